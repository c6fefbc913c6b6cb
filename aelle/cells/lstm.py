"""LSTM (torch's gate order i, f, g, o), Chapter 2 and Chapter 3 Appendix C.

The carried state is (h, c). ``state="full"`` analyses the complete 2N-dimensional map;
``state="hidden"`` is the dissertation's convention dh_t/dh_{t-1} with c_{t-1} held fixed.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor

from aelle.cells.base import TwoStateCell, affine, rows_sum
from aelle.cells.random_init import uniform
from aelle.cells.registry import register


@register("lstm")
@dataclasses.dataclass(frozen=True)
class LSTMCell(TwoStateCell):
    layerable: ClassVar[bool] = True

    weight_ih: Tensor  # (M, 4N, I)
    weight_hh: Tensor  # (M, 4N, N)
    bias: Tensor       # (M, 4N): b_ih + b_hh

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[-1]

    def _gates(self, s, x):
        n = self.hidden_size
        h, c = s[..., :n], s[..., n:]
        a = affine(h, self.weight_hh) + affine(x, self.weight_ih, self.bias)
        ai, af, ag, ao = a.split(n, dim=-1)
        i, f, g, o = torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)
        c_new = f * c + i * g
        tc = torch.tanh(c_new)
        return c, i, f, g, o, c_new, tc

    def step(self, s, x):
        *_, o, c_new, tc = self._gates(s, x)
        return torch.cat([o * tc, c_new], dim=-1)

    def jacobians(self, s, x, wrt_input=False):
        c, i, f, g, o, c_new, tc = self._gates(s, x)
        s_new = torch.cat([o * tc, c_new], dim=-1)
        # how c_new and h_new move with each gate's pre-activation, (M, B, N) per gate
        dc_gates = (g * i * (1 - i), c * f * (1 - f), i * (1 - g * g))
        dtc = o * (1 - tc * tc)
        dh_gates = (*(dtc * d for d in dc_gates), tc * o * (1 - o))

        def through(weight, need_c):  # d(h_new), d(c_new) w.r.t. what `weight` multiplies
            blocks = weight.chunk(4, dim=-2)
            dh_dv = rows_sum(*zip(dh_gates, blocks, strict=True))
            dc_dv = rows_sum(*zip(dc_gates, blocks[:3], strict=True)) if need_c else None
            return dh_dv, dc_dv

        full = self.state == "full"
        dh_dh, dc_dh = through(self.weight_hh, full)
        if full:
            j = torch.cat([torch.cat([dh_dh, torch.diag_embed(dtc * f)], -1),
                           torch.cat([dc_dh, torch.diag_embed(f)], -1)], -2)
        else:
            j = dh_dh
        jx = None
        if wrt_input:
            dh_dx, dc_dx = through(self.weight_ih, full)
            jx = torch.cat([dh_dx, dc_dx], -2) if full else dh_dx
        return s_new, j, jx

    @classmethod
    def random(cls, input_size, hidden_size, p=0.5, n_networks=1, generator=None,
               dtype=torch.float64, state="full"):
        u = uniform(p, n_networks, generator, dtype)
        n4 = 4 * hidden_size
        return cls(u(n4, input_size), u(n4, hidden_size), u(n4), state=state)

