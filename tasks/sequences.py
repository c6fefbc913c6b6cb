"""Sequence-to-sequence regression shared by the tasks with a known answer (sysid, flipflop):
a torch LSTM / GRU / tanh RNN read out at every step, trained on the mean squared error."""

from __future__ import annotations

import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution
from torch import Tensor, nn

import aelle
from aelle.cells.base import Cell
from tasks.base import SpectrumProbe, require
from tasks.models import TORCH_MODULES, uniform_
from tasks.supervised import SupervisedRun

ARCHS = tuple(TORCH_MODULES)


class SequenceRegressor(nn.Module):
    """(B, T, I) -> (B, T, O): the recurrent layer's output at every step, read out linearly."""

    def __init__(self, arch: str, input_size: int, hidden: int, outputs: int):
        super().__init__()
        self.rnn = TORCH_MODULES[arch](input_size, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, outputs)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        return self.readout(out)

    def lyapunov_cell(self, state: str = "full", dtype: torch.dtype | None = None) -> Cell:
        return aelle.cell_for(self.rnn, state, dtype=dtype)


def regressor(arch: str, input_size: int, hidden: int, outputs: int, p: float,
              generator: torch.Generator) -> SequenceRegressor:
    """Recurrent weights uniform on [-p, p]; the readout keeps torch's initialisation."""
    model = SequenceRegressor(arch, input_size, hidden, outputs)
    uniform_(model.rnn, p, generator)
    return model


class RegressionRun(SupervisedRun):
    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.mse_loss(output, target)


def search_space(p_range=(0.05, 1.0), lr_range=(1e-3, 3e-2)):
    return {"arch": CategoricalDistribution(ARCHS), "p": FloatDistribution(*p_range),
            "lr": FloatDistribution(*lr_range, log=True)}


def check(params) -> None:
    arch = require(params, "arch", str)
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")
    if require(params, "p", (int, float)) <= 0:
        raise ValueError(f"parameter p must be positive, got {params['p']}")
    if require(params, "lr", (int, float)) <= 0:
        raise ValueError(f"parameter lr must be positive, got {params['lr']}")


def probe(inputs: Tensor, sequences: int, warmup: int, steps: int) -> SpectrumProbe:
    """The first ``sequences`` validation inputs, cut (or tiled in time) to warmup + steps."""
    length = warmup + steps
    x = inputs[:sequences]
    reps = -(-length // x.shape[1])
    return SpectrumProbe(x.repeat(1, reps, 1)[:, :length].contiguous(), warmup)
