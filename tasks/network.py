"""The common case of a task in a few lines: a ``torch.nn.Module`` whose recurrent core is a
torch RNN, LSTM or GRU (or a module with a ``lyapunov_cell`` method, such as the zoo's layers
of an aelle cell), trained by minibatch BPTT on tensors the task loads.

    class Forecast(NetworkTask):
        name = "forecast"
        def search_space(self): return {"hidden": IntDistribution(8, 64)}
        def data(self, settings): return Data(train_x, train_y, val_x, val_y)
        def model(self, params, settings): return MyNet(params["hidden"])

Every parameter of ``search_space`` is required in a trial. The model is built under the
trial's seeded torch generator. ``loss`` defaults to the mean squared error and ``optimizer``
to Adam at ``lr`` (the setting, or a parameter named ``lr``). The spectrum is driven by
``spectrum_sequences`` streams of consecutive validation inputs (sequences joined in time, so
that a probe may be longer than one sequence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

import aelle
from aelle.cells.base import Cell
from tasks.base import Settings, SpectrumProbe, Task, positive, require
from tasks.supervised import SupervisedRun


@dataclass(frozen=True)
class Data:
    """Inputs (N, T, I) and targets (whatever ``loss`` takes) of the training and validation
    sets."""

    train_inputs: Tensor
    train_targets: Tensor
    val_inputs: Tensor
    val_targets: Tensor

    def __post_init__(self):
        for split in ("train", "val"):
            x, y = getattr(self, f"{split}_inputs"), getattr(self, f"{split}_targets")
            if not isinstance(x, Tensor) or x.ndim != 3 or not x.is_floating_point():
                raise ValueError(f"{split}_inputs must be a float tensor (N, T, I), got "
                                 f"{getattr(x, 'shape', type(x).__name__)}")
            if not isinstance(y, Tensor) or len(y) != len(x) or len(x) == 0:
                raise ValueError(f"{split}_targets must be a tensor with one target per "
                                 f"input ({len(x)}), got {getattr(y, 'shape', y)}")


@dataclass(frozen=True)
class NetworkSettings(Settings):
    lr: float = 1e-3
    batch_size: int = 64
    grad_clip: float | None = 1.0
    spectrum_sequences: int = 8
    spectrum_steps: int = 100
    spectrum_warmup: int = 20

    def __post_init__(self):
        super().__post_init__()
        positive(self, "lr", "batch_size", "grad_clip")


class NetworkTask(Task):
    """A task from ``data`` and ``model``; see the module's docstring."""

    settings_class = NetworkSettings
    loss_name = "MSE"

    def data(self, settings: NetworkSettings) -> Data:
        raise NotImplementedError(f"{type(self).__name__} must define data(settings)")

    def model(self, params: dict[str, Any], settings: NetworkSettings) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must define model(params, settings)")

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.mse_loss(output, target)

    def optimizer(self, model: nn.Module, params: dict[str, Any],
                  settings: NetworkSettings) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=float(params.get("lr", settings.lr)))

    def core(self, model: nn.Module) -> nn.Module:
        """The recurrent core whose map is analysed: the model itself when it has a
        ``lyapunov_cell`` method or is a torch RNN, else its one submodule that is."""
        return find_core(model, type(self).__name__)

    def check_params(self, params, settings) -> None:
        super().check_params(params, settings)
        for name in self.search_space():
            if name not in params:
                raise ValueError(f"missing parameter {name!r} for task {self.name}")
            require(params, name, (int, float, str, bool, type(None)))

    def state_size(self, params, settings: NetworkSettings) -> int:
        """The analysed cell's dimension, from the model built without its weights' memory
        (the meta device), or on the CPU when the model cannot be built there."""
        with torch.random.fork_rng(devices=[]):
            try:
                with torch.device("meta"):
                    model = self.model(params, settings)
                return self._cell(model, settings.spectrum_state).dim
            except (RuntimeError, NotImplementedError):
                model = self.model(params, settings)
                return self._cell(model, settings.spectrum_state).dim

    def _cell(self, model: nn.Module, state: str, dtype: torch.dtype | None = None) -> Cell:
        return analysed_cell(self, model, state, dtype)

    def build(self, params, settings: NetworkSettings, seed, device) -> NetworkRun:
        data = self.data(settings)
        model = self.model(params, settings)
        return NetworkRun(self, model, data, params, settings, seed, device)


def find_core(model: nn.Module, owner: str) -> nn.Module:
    """``model`` when it has a ``lyapunov_cell`` method or is a torch RNN, else its one
    submodule that is; TypeError naming ``owner`` otherwise."""
    if _recurrent(model):
        return model
    found = [m for m in model.modules() if _recurrent(m)]
    if len(found) != 1:
        raise TypeError(f"{owner}: the model must hold exactly one torch RNN/LSTM/GRU or "
                        f"module with lyapunov_cell, found {len(found)}; override "
                        "core(model) to name it")
    return found[0]


def analysed_cell(task, model: nn.Module, state: str, dtype: torch.dtype | None) -> Cell:
    """The cell of ``task.core(model)``: the map whose spectrum a trial reports."""
    return aelle.cell_for(task.core(model), state, dtype=dtype)


def _recurrent(m: nn.Module) -> bool:
    return hasattr(m, "lyapunov_cell") or isinstance(m, nn.RNNBase | nn.RNNCellBase)


class NetworkRun(SupervisedRun):
    def __init__(self, task: NetworkTask, model: nn.Module, data: Data, params, settings,
                 seed: int, device: torch.device):
        to = lambda t: t.to(device)  # noqa: E731
        probe = stream_probe(to(data.val_inputs), settings)
        super().__init__(model, (to(data.train_inputs), to(data.train_targets)),
                         (to(data.val_inputs), to(data.val_targets)), probe, lr=settings.lr,
                         batch_size=settings.batch_size, grad_clip=settings.grad_clip,
                         generator=torch.Generator().manual_seed(seed), device=device)
        self.task = task
        self.optimizer = task.optimizer(self.model, params, settings)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return self.task.loss(output, target)

    def lyapunov_cell(self, state: str, dtype: torch.dtype | None = None) -> Cell:
        return self.task._cell(self.model, state, dtype)


def stream_probe(inputs: Tensor, settings: Settings) -> SpectrumProbe:
    """``spectrum_sequences`` streams of consecutive sequences of ``inputs`` (N, T, I), each
    ``spectrum_warmup + spectrum_steps`` steps long, starting at evenly spaced sequences and
    wrapping around when there are too few."""
    n, steps, width = inputs.shape
    length = settings.spectrum_warmup + settings.spectrum_steps
    per_stream = -(-length // steps)
    b = settings.spectrum_sequences
    starts = torch.arange(b, device=inputs.device) * max(n // b, 1)
    index = (starts[:, None] + torch.arange(per_stream, device=inputs.device)) % n
    stream = inputs[index].reshape(b, per_stream * steps, width)[:, :length]
    return SpectrumProbe(stream.contiguous(), settings.spectrum_warmup)
