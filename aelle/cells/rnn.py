"""Vanilla RNN, eq. (2.1)-(2.4): h_t = phi(W_hh h_{t-1} + W_ih x_t + b), phi = tanh or ReLU."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor

from aelle.cells.base import Cell, affine, rows
from aelle.cells.random_init import uniform
from aelle.cells.registry import register

_ACT = {
    "tanh": (torch.tanh, lambda a, h: 1.0 - h * h),
    # ReLU'(0) := 0, matching torch's autograd convention.
    "relu": (torch.relu, lambda a, h: (a > 0).to(a.dtype)),
}


@register("rnn")
@dataclasses.dataclass(frozen=True)
class RNNCell(Cell):
    layerable: ClassVar[bool] = True

    weight_ih: Tensor  # (M, N, I)
    weight_hh: Tensor  # (M, N, N)
    bias: Tensor       # (M, N): b_ih + b_hh
    nonlinearity: str = "tanh"

    def __post_init__(self):
        if self.nonlinearity not in _ACT:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {self.nonlinearity!r}")

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[-1]

    def _pre(self, s: Tensor, x: Tensor) -> Tensor:
        return affine(s, self.weight_hh) + affine(x, self.weight_ih, self.bias)

    def step(self, s, x):
        return _ACT[self.nonlinearity][0](self._pre(s, x))

    def jacobians(self, s, x, wrt_input=False):
        phi, dphi = _ACT[self.nonlinearity]
        a = self._pre(s, x)
        h = phi(a)
        d = dphi(a, h)
        jx = rows(d, self.weight_ih) if wrt_input else None
        return h, rows(d, self.weight_hh), jx

    @classmethod
    def random(cls, input_size, hidden_size, p=0.5, n_networks=1, generator=None,
               dtype=torch.float64, nonlinearity="tanh"):
        u = uniform(p, n_networks, generator, dtype)
        return cls(u(hidden_size, input_size), u(hidden_size, hidden_size), u(hidden_size),
                   nonlinearity=nonlinearity)
