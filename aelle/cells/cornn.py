"""Coupled oscillatory RNN (Rusch & Mishra 2021), Chapter 3 Appendix C.

z_t = z_{t-1} + dt (tanh(W y_{t-1} + Wz z_{t-1} + V x_t + b) - gamma y_{t-1} - eps z_{t-1})
y_t = y_{t-1} + dt z_t

State (y, z), y is the output. ``state="hidden"``: dy_t/dy_{t-1} with z_{t-1} held fixed, the
derivative written out in the dissertation's appendix.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from aelle.cells.base import TwoStateCell, affine, per_net, rows, scalar
from aelle.cells.random_init import uniform
from aelle.cells.registry import register


@register("cornn")
@dataclasses.dataclass(frozen=True)
class CoRNNCell(TwoStateCell):
    weight_ih: Tensor  # (M, N, I): V
    weight_y: Tensor   # (M, N, N): W
    weight_z: Tensor   # (M, N, N): Wz
    bias: Tensor       # (M, N)
    dt: Tensor         # (M,)
    gamma: Tensor      # (M,)
    eps: Tensor        # (M,)

    @property
    def hidden_size(self) -> int:
        return self.weight_y.shape[-1]

    def _forward(self, s, x):
        n = self.hidden_size
        y, z = s[..., :n], s[..., n:]
        t = torch.tanh(affine(y, self.weight_y) + affine(z, self.weight_z)
                       + affine(x, self.weight_ih, self.bias))
        dt = per_net(self.dt, 3)
        z_new = z + dt * (t - per_net(self.gamma, 3) * y - per_net(self.eps, 3) * z)
        return torch.cat([y + dt * z_new, z_new], -1), t

    def step(self, s, x):
        return self._forward(s, x)[0]

    def jacobians(self, s, x, wrt_input=False):
        s_new, t = self._forward(s, x)
        dt = per_net(self.dt, 4)
        d = 1 - t * t
        eye = torch.eye(self.hidden_size, dtype=s.dtype, device=s.device)
        dz_dy = dt * (rows(d, self.weight_y) - per_net(self.gamma, 4) * eye)
        dy_dy = eye + dt * dz_dy
        if self.state == "full":
            dz_dz = eye + dt * (rows(d, self.weight_z) - per_net(self.eps, 4) * eye)
            j = torch.cat([torch.cat([dy_dy, dt * dz_dz], -1),
                           torch.cat([dz_dy, dz_dz], -1)], -2)
        else:
            j = dy_dy
        jx = None
        if wrt_input:
            dz_dx = dt * rows(d, self.weight_ih)
            jx = torch.cat([dt * dz_dx, dz_dx], -2) if self.state == "full" else dt * dz_dx
        return s_new, j, jx

    @classmethod
    def random(cls, input_size, hidden_size, p=0.5, n_networks=1, generator=None,
               dtype=torch.float64, dt=0.042, gamma=2.7, eps=4.7, state="full"):
        u = uniform(p, n_networks, generator, dtype)
        v = u(hidden_size, input_size)
        return cls(v, u(hidden_size, hidden_size), u(hidden_size, hidden_size), u(hidden_size),
                   scalar(dt, n_networks, v), scalar(gamma, n_networks, v),
                   scalar(eps, n_networks, v), state=state)
