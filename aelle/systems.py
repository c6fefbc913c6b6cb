"""Maps whose Lyapunov exponents are known, to validate the spectrum engine.

They take no input: drive them with ``torch.zeros(B, T, 0)``.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from aelle.cells.base import Cell, per_net, scalar


@dataclasses.dataclass(frozen=True)
class HenonMap(Cell):
    """x' = 1 - a x^2 + y, y' = b x. For a = 1.4, b = 0.3: exponents (0.419, -1.623)."""

    a: Tensor  # (M,)
    b: Tensor  # (M,)

    @classmethod
    def classic(cls, dtype=torch.float64) -> HenonMap:
        return cls(scalar(1.4, 1, torch.empty(0, dtype=dtype)),
                   scalar(0.3, 1, torch.empty(0, dtype=dtype)))

    @property
    def hidden_size(self) -> int:
        return 2

    @property
    def input_size(self) -> int:
        return 0

    def step(self, s, x):
        px, py = s[..., 0], s[..., 1]
        a, b = per_net(self.a, 2), per_net(self.b, 2)
        return torch.stack([1 - a * px * px + py, b * px], -1)

    def jacobians(self, s, x, wrt_input=False):
        px = s[..., 0]
        a, b = per_net(self.a, 2), per_net(self.b, 2)
        j = torch.zeros(*s.shape, 2, dtype=s.dtype, device=s.device)
        j[..., 0, 0] = -2 * a * px
        j[..., 0, 1] = 1
        j[..., 1, 0] = b.expand_as(px)
        jx = s.new_zeros(*s.shape, 0) if wrt_input else None
        return self.step(s, x), j, jx


@dataclasses.dataclass(frozen=True)
class LinearMap(Cell):
    """s' = A s + c. A constant A has exponents log|singular-growth| = log|d_i| when diagonal."""

    matrix: Tensor  # (M, D, D)
    offset: Tensor  # (M, D)

    @property
    def hidden_size(self) -> int:
        return self.matrix.shape[-1]

    @property
    def input_size(self) -> int:
        return 0

    def step(self, s, x):
        return s @ self.matrix.mT + self.offset[:, None]

    def jacobians(self, s, x, wrt_input=False):
        j = self.matrix[:, None].expand(*s.shape[:2], -1, -1)
        jx = s.new_zeros(*s.shape, 0) if wrt_input else None
        return self.step(s, x), j, jx
