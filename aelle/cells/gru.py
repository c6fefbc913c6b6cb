"""GRU (torch's convention, gate order r, z, n), Chapter 2 and Chapter 3 Appendix C.

h_t = (1 - z) n + z h_{t-1},  n = tanh(W_in x + b_in + r (W_hn h_{t-1} + b_hn)).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor

from aelle.cells.base import Cell, affine, rows_sum
from aelle.cells.random_init import uniform
from aelle.cells.registry import register


@register("gru")
@dataclasses.dataclass(frozen=True)
class GRUCell(Cell):
    layerable: ClassVar[bool] = True

    weight_ih: Tensor  # (M, 3N, I)
    weight_hh: Tensor  # (M, 3N, N)
    bias_ih: Tensor    # (M, 3N)
    bias_hh: Tensor    # (M, 3N)

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[-1]

    def _gates(self, h, x):
        n = self.hidden_size
        ar_x, az_x, an_x = affine(x, self.weight_ih, self.bias_ih).split(n, -1)
        ar_h, az_h, an_h = affine(h, self.weight_hh, self.bias_hh).split(n, -1)
        r = torch.sigmoid(ar_x + ar_h)
        z = torch.sigmoid(az_x + az_h)
        g = torch.tanh(an_x + r * an_h)
        return r, z, g, an_h

    def step(self, s, x):
        _, z, g, _ = self._gates(s, x)
        return (1 - z) * g + z * s

    def jacobians(self, s, x, wrt_input=False):
        n = self.hidden_size
        r, z, g, an_h = self._gates(s, x)
        h_new = (1 - z) * g + z * s
        dr = r * (1 - r)
        dz = (s - g) * z * (1 - z)          # dh/d(pre z)
        dg = (1 - z) * (1 - g * g)          # dh/d(pre n)
        u_r, u_z, u_n = self.weight_hh.split(n, -2)
        j = rows_sum((dg * an_h * dr, u_r), (dz, u_z), (dg * r, u_n), diagonal=z)
        jx = None
        if wrt_input:
            w_r, w_z, w_n = self.weight_ih.split(n, -2)
            jx = rows_sum((dg * an_h * dr, w_r), (dz, w_z), (dg, w_n))
        return h_new, j, jx

    @classmethod
    def random(cls, input_size, hidden_size, p=0.5, n_networks=1, generator=None,
               dtype=torch.float64):
        u = uniform(p, n_networks, generator, dtype)
        n3 = 3 * hidden_size
        return cls(u(n3, input_size), u(n3, hidden_size), u(n3), u(n3))


