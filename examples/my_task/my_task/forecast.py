"""``sines``: predict the next value of a time series from the previous ``window`` values with
a GRU read out by a linear layer. The search space: the GRU's width and the learning rate."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from optuna.distributions import FloatDistribution, IntDistribution
from torch import nn

from my_task import series
from tasks import Data, NetworkSettings, NetworkTask


@dataclass(frozen=True)
class SineSettings(NetworkSettings):
    """csv_path: the series (default: written on first use); window: input steps per target."""

    epochs: int = 8
    csv_path: str | None = None
    window: int = 32
    spectrum_steps: int = 64
    spectrum_warmup: int = 16


class Forecaster(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)  # the recurrent core AeLLE analyses
        self.readout = nn.Linear(hidden, 1)

    def forward(self, x):  # (B, window, 1) -> (B, 1)
        out, _ = self.gru(x)
        return self.readout(out[:, -1])


class SineForecast(NetworkTask):
    name = "sines"
    version = "1"
    settings_class = SineSettings

    def search_space(self):
        return {"hidden": IntDistribution(8, 48), "lr": FloatDistribution(1e-3, 3e-2, log=True)}

    def data(self, settings: SineSettings) -> Data:
        path = settings.csv_path or series.DEFAULT
        if settings.csv_path is None and not series.DEFAULT.exists():
            series.write(path)
        z = torch.as_tensor(series.read(path), dtype=torch.float32)
        cut = int(0.8 * len(z))
        z = (z - z[:cut].mean()) / z[:cut].std()
        w = settings.window
        # training windows overlap; validation windows follow each other, so that the
        # spectrum's streams of them are the series itself
        train = z[:cut].unfold(0, w + 1, 2)
        val = z[cut:].unfold(0, w + 1, w)
        return Data(train[:, :w, None], train[:, w:], val[:, :w, None], val[:, w:])

    def model(self, params, settings):
        return Forecaster(params["hidden"])
