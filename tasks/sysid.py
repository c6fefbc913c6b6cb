"""System identification (seed 002): a recurrent network learns the input-output map of a
stable fourth-order discrete linear system, the seed's zpk(-4, [-9 +- 5i, -2 +- 50i], 5e5)
sampled with a zero-order hold at Ts = 0.01 s (steady-state gain 7.5351).

Data: white Gaussian inputs, ``seq_len`` steps a sequence, the system from rest; the target is
its output y_t (x_0 = 0, as the network's zero state) divided by the standard deviation of the
training outputs (the poles do not depend on that scale; the gains do, by the factor). Loss:
mean squared error. The answer is known: the network linearised at its zero-input operating
point should carry the system's four poles (:func:`aelle.explain.linearise`,
``pole_distance``).

Parameters: ``arch`` (lstm, gru, rnn), ``p`` (recurrent init scale), ``lr``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aelle.cells import registry as cells
from aelle.cells.base import TwoStateCell
from aelle.explain.linear_lstm import seed_system
from tasks import sequences
from tasks.base import Settings, Task, positive
from tasks.registry import register


@dataclass(frozen=True)
class SysIdSettings(Settings):
    epochs: int = 40
    hidden: int = 8
    seq_len: int = 200
    train_sequences: int = 64
    val_sequences: int = 16
    batch_size: int = 16
    grad_clip: float | None = 1.0
    data_seed: int = 0
    spectrum_sequences: int = 8
    spectrum_steps: int = 100
    spectrum_warmup: int = 20

    def __post_init__(self):
        super().__post_init__()
        positive(self, "hidden", "seq_len", "train_sequences", "val_sequences", "batch_size",
                 "grad_clip")
        if self.data_seed < 0:
            raise ValueError(f"data_seed must be >= 0, got {self.data_seed}")


def true_poles() -> np.ndarray:
    return np.linalg.eigvals(seed_system()[0])


def simulate(u: np.ndarray) -> np.ndarray:
    """The system's output (B, T, 1) for inputs (B, T, 1) from rest."""
    a, b, c, d = seed_system()
    x = np.zeros((u.shape[0], a.shape[0]))
    ys = []
    for t in range(u.shape[1]):
        ys.append(x @ c.T + u[:, t] @ d.T)
        x = x @ a.T + u[:, t] @ b.T
    return np.stack(ys, 1)


def dataset(settings: SysIdSettings):
    """((u, y) train, (u, y) validation) as float32 arrays (B, T, 1)."""
    rng = np.random.default_rng(settings.data_seed)
    n = settings.train_sequences + settings.val_sequences
    u = rng.standard_normal((n, settings.seq_len, 1))
    y = simulate(u)
    cut = settings.train_sequences
    y = y / y[:cut].std()
    f = lambda a: a.astype(np.float32)  # noqa: E731
    return (f(u[:cut]), f(y[:cut])), (f(u[cut:]), f(y[cut:]))


@register
class SysId(Task):
    name = "sysid"
    settings_class = SysIdSettings
    loss_name = "mse"

    def search_space(self):
        return sequences.search_space()

    def check_params(self, params, settings) -> None:
        super().check_params(params, settings)
        sequences.check(params)

    def state_size(self, params, settings: SysIdSettings) -> int:
        two = issubclass(cells.get(params["arch"]), TwoStateCell)
        return settings.hidden * (2 if two and settings.spectrum_state == "full" else 1)

    def build(self, params, settings: SysIdSettings, seed, device):
        (ut, yt), (uv, yv) = dataset(settings)
        g = torch.Generator().manual_seed(seed)
        model = sequences.regressor(params["arch"], 1, settings.hidden, 1, float(params["p"]), g)
        to = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        probe = sequences.probe(to(uv), settings.spectrum_sequences, settings.spectrum_warmup,
                                settings.spectrum_steps)
        return sequences.RegressionRun(model, (to(ut), to(yt)), (to(uv), to(yv)), probe,
                                       lr=float(params["lr"]), batch_size=settings.batch_size,
                                       grad_clip=settings.grad_clip, generator=g, device=device)
