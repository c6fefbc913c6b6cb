"""Trainable recurrent layers whose step is an ``aelle`` cell's, so that the spectrum is computed
for exactly the map that was trained.

LSTM, GRU and RNN use torch's fused modules (``aelle.cell_for`` reads their weights); the other
architectures train through their cell's own ``step``, with the cell's tensors as parameters.
Every layer maps inputs (B, T, I) to the last output (B, N) and provides ``lyapunov_cell``.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

import aelle
from aelle.cells import get
from aelle.cells.base import Cell, TwoStateCell, scalar
from aelle.cells.lipschitz import DEFAULTS, LipschitzCell, symmetric_skew

TORCH_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def uniform_(module: nn.Module, p: float, generator: torch.Generator) -> nn.Module:
    """Every parameter of ``module`` uniform on [-p, p] (the dissertation's initialisation),
    drawn from ``generator`` so that a seed fixes the network on every device."""
    with torch.no_grad():
        for param in module.parameters():
            draw = torch.rand(param.shape, generator=generator, dtype=param.dtype)
            param.copy_((2 * draw - 1) * p)
    return module


def _same(t: Tensor) -> Tensor:
    return t


class TorchRecurrent(nn.Module):
    """torch's LSTM / GRU / tanh RNN, returning the last output."""

    def __init__(self, arch: str, input_size: int, hidden_size: int):
        super().__init__()
        self.rnn = TORCH_MODULES[arch](input_size, hidden_size, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, I) -> (B, N)
        out, _ = self.rnn(x)
        return out[:, -1]

    def lyapunov_cell(self, state: str = "full", dtype: torch.dtype | None = None) -> Cell:
        return aelle.cell_for(self.rnn, state, dtype=dtype)


class CellRecurrent(nn.Module):
    """An aelle cell as a trainable layer: its matrices and biases are parameters, its per-network
    scalars (time steps, damping) fixed buffers. Weights keep the cell's leading M = 1.

    ``derived`` names cell tensors that a subclass computes from its own parameters
    (:meth:`derived_tensors`) instead of training them directly."""

    def __init__(self, template: Cell, derived: tuple[str, ...] = ()):
        super().__init__()
        self.template = template
        self._fields = [n for n in template.tensors() if n not in derived]
        for name in self._fields:
            t = getattr(template, name)
            if t.ndim == 1:  # (M,) hyperparameter
                self.register_buffer(name, t.clone())
            else:
                self.register_parameter(name, nn.Parameter(t.clone()))

    def derived_tensors(self, convert=_same) -> dict[str, Tensor]:
        """The derived cell tensors, computed from ``convert`` of this layer's own tensors."""
        return {}

    def cell(self, convert=_same) -> Cell:
        """The cell with ``convert`` of this layer's current tensors (by default themselves,
        differentiable), each converted before any derived tensor is computed from them."""
        return dataclasses.replace(self.template,
                                   **{n: convert(getattr(self, n)) for n in self._fields},
                                   **self.derived_tensors(convert))

    def step(self, cell: Cell, s: Tensor, x: Tensor) -> Tensor:
        return cell.step(s, x)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, I) -> (B, N)
        cell = self.cell()
        s = torch.zeros(1, x.shape[0], cell.state_size, dtype=x.dtype, device=x.device)
        for t in range(x.shape[1]):
            s = self.step(cell, s, x[None, :, t])
        return cell.output(s)[0]

    def lyapunov_cell(self, state: str = "full", dtype: torch.dtype | None = None) -> Cell:
        """The cell, detached, in ``dtype`` (default: the layer's): every tensor is converted
        before a derived one is computed from it, so float64 is exactly the float64 map."""
        cell = self.cell(lambda t: t.detach().to(dtype=dtype, copy=True))
        return dataclasses.replace(cell, state=state) if isinstance(cell, TwoStateCell) else cell


class LipschitzRecurrent(CellRecurrent):
    """Lipschitz RNN trained through its raw matrices M_A, M_W: A and W keep the
    (1 - beta)(M + M^T) + beta (M - M^T) - gamma I form throughout training."""

    def __init__(self, input_size: int, hidden_size: int, cls=LipschitzCell,
                 dt=DEFAULTS.dt, alpha=DEFAULTS.alpha, beta=DEFAULTS.beta,
                 gamma_a=DEFAULTS.gamma_a, gamma_w=DEFAULTS.gamma_w):
        n = hidden_size
        template = cls(torch.zeros(1, n, input_size), torch.zeros(1, n, n), torch.zeros(1, n, n),
                       torch.zeros(1, n), scalar(dt), scalar(alpha))
        super().__init__(template, derived=("mat_a", "mat_w"))
        self.raw_a = nn.Parameter(torch.zeros(1, n, n))
        self.raw_w = nn.Parameter(torch.zeros(1, n, n))
        for name, value in (("beta", beta), ("gamma_a", gamma_a), ("gamma_w", gamma_w)):
            self.register_buffer(name, scalar(value))

    def derived_tensors(self, convert=_same) -> dict[str, Tensor]:
        beta = convert(self.beta)
        return {"mat_a": symmetric_skew(convert(self.raw_a), beta, convert(self.gamma_a)),
                "mat_w": symmetric_skew(convert(self.raw_w), beta, convert(self.gamma_w))}


class NoisyRecurrent(LipschitzRecurrent):
    """Noisy RNN (Lim et al. 2021): the Lipschitz-form update with additive and multiplicative
    Gaussian noise while training (Euler-Maruyama, sqrt(dt) scaling); deterministic in eval mode
    and in its spectrum."""

    def __init__(self, input_size: int, hidden_size: int, sigma_add: float = 0.02,
                 sigma_mult: float = 0.02, dt: float = DEFAULTS.dt, **kw):
        super().__init__(input_size, hidden_size, cls=get("noisy"), dt=dt, **kw)
        self.sigma_add, self.sigma_mult = sigma_add, sigma_mult
        self.noise_scale = dt ** 0.5

    def step(self, cell, s, x):
        s_next = cell.step(s, x)
        if not self.training:
            return s_next
        return s_next + self.noise_scale * (self.sigma_add * torch.randn_like(s)
                                            + self.sigma_mult * s * torch.randn_like(s))


def recurrent(arch: str, input_size: int, hidden_size: int, p: float,
              generator: torch.Generator) -> nn.Module:
    """A recurrent layer of ``arch`` with every recurrent parameter uniform on [-p, p]."""
    if arch in TORCH_MODULES:
        return uniform_(TorchRecurrent(arch, input_size, hidden_size), p, generator)
    if arch == "lipschitz":
        return uniform_(LipschitzRecurrent(input_size, hidden_size), p, generator)
    if arch == "noisy":
        return uniform_(NoisyRecurrent(input_size, hidden_size), p, generator)
    # The cell's own ``random`` draws uniform [-p, p] weights and sets its fixed scalars.
    return CellRecurrent(get(arch).random(input_size, hidden_size, p=p, generator=generator,
                                          dtype=torch.float32))
