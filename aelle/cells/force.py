"""The random rate network of FORCE learning (Sussillo & Abbott 2009), the signal task's model.

x_t = x_{t-1} + dt (-x_{t-1} + W r + w_fb z + U u_t),  r = tanh(x_{t-1}),  z = w_out . r

W is the fixed random connectivity (gain g folded in), w_out the readout that FORCE trains, and
w_fb the fixed feedback of the readout into the network: the trained part of the recurrence is
the rank-1 matrix w_fb w_out^T, so

J = (1 - dt) I + dt (W + w_fb w_out^T) diag(1 - r^2).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from aelle.cells.base import Cell, affine, per_net, scalar
from aelle.cells.random_init import uniform
from aelle.cells.registry import register


@register("force")
@dataclasses.dataclass(frozen=True)
class ForceCell(Cell):
    weight_ih: Tensor  # (M, N, I): U (I may be 0: an autonomous generator)
    weight_hh: Tensor  # (M, N, N): W
    w_out: Tensor      # (M, N): readout
    w_fb: Tensor       # (M, N): feedback of the readout
    dt: Tensor         # (M,): step over the unit time constant

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[-1]

    def readout(self, s: Tensor) -> Tensor:
        """z = w_out . tanh(x): (M, B, N) -> (M, B)."""
        return (torch.tanh(s) * self.w_out[:, None, :]).sum(-1)

    def _next(self, s: Tensor, x: Tensor, r: Tensor) -> Tensor:
        z = (r * self.w_out[:, None, :]).sum(-1, keepdim=True)
        drive = affine(r, self.weight_hh) + z * self.w_fb[:, None, :] + affine(x, self.weight_ih)
        return s + per_net(self.dt, 3) * (drive - s)

    def step(self, s, x):
        return self._next(s, x, torch.tanh(s))

    def jacobians(self, s, x, wrt_input=False):
        r = torch.tanh(s)
        dt = per_net(self.dt, 3)
        # dt (W + w_fb w_out^T): (M, N, N), then one pass over the (M, B, N, N) Jacobians; the
        # identity term goes onto their diagonals
        recurrent = torch.addcmul(self.weight_hh, self.w_fb[:, :, None],
                                  self.w_out[:, None, :]).mul_(dt)
        j = recurrent[:, None] * (1 - r * r)[..., None, :]
        j.diagonal(dim1=-2, dim2=-1).add_(1 - dt)
        jx = None
        if wrt_input:
            jx = (dt * self.weight_ih)[:, None].expand(-1, s.shape[1], -1, -1)
        return self._next(s, x, r), j, jx

    @classmethod
    def random(cls, input_size, hidden_size, p=0.5, n_networks=1, generator=None,
               dtype=torch.float64, dt=0.1):
        u = uniform(p, n_networks, generator, dtype)
        w = u(hidden_size, hidden_size)
        return cls(u(hidden_size, input_size), w, u(hidden_size), u(hidden_size),
                   scalar(dt, n_networks, w))
