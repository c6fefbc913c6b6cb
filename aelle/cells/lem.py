"""Long Expressive Memory (Rusch et al. 2022), Chapter 3 Appendix C, eqs. (3.8)-(3.9):

dt1 = dt sigmoid(W1 y + V1 x + b1),        dt2 = dt sigmoid(W2 y + V2 x + b2)
z_t = (1 - dt1) z_{t-1} + dt1 tanh(Wz y_{t-1} + Vz x + bz)
y_t = (1 - dt2) y_{t-1} + dt2 tanh(Wy z_t + Vy x + by)

State (y, z), y is the output. ``state="hidden"``: dy_t/dy_{t-1} with z_{t-1} held fixed.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from aelle.cells.base import TwoStateCell, affine, per_net, rows, scalar
from aelle.cells.random_init import uniform
from aelle.cells.registry import register


@register("lem")
@dataclasses.dataclass(frozen=True)
class LEMCell(TwoStateCell):
    weight_ih: Tensor  # (M, 4N, I): V1, V2, Vz, Vy
    weight_hh: Tensor  # (M, 3N, N): W1, W2, Wz (all act on y)
    weight_zy: Tensor  # (M, N, N): Wy (acts on the new z)
    bias: Tensor       # (M, 4N): b1, b2, bz, by
    dt: Tensor         # (M,)

    @property
    def hidden_size(self) -> int:
        return self.weight_zy.shape[-1]

    def _forward(self, s, x):
        n = self.hidden_size
        y, z = s[..., :n], s[..., n:]
        i1, i2, iz, iy = affine(x, self.weight_ih, self.bias).split(n, -1)
        h1, h2, hz = affine(y, self.weight_hh).split(n, -1)
        dt = per_net(self.dt, 3)
        g1, g2 = torch.sigmoid(i1 + h1), torch.sigmoid(i2 + h2)
        tz = torch.tanh(iz + hz)
        z_new = (1 - dt * g1) * z + dt * g1 * tz
        ty = torch.tanh(affine(z_new, self.weight_zy) + iy)
        y_new = (1 - dt * g2) * y + dt * g2 * ty
        return torch.cat([y_new, z_new], -1), (y, z, g1, g2, tz, ty)

    def step(self, s, x):
        return self._forward(s, x)[0]

    def jacobians(self, s, x, wrt_input=False):
        n = self.hidden_size
        s_new, (y, z, g1, g2, tz, ty) = self._forward(s, x)
        dt = per_net(self.dt, 3)
        w1, w2, wz = self.weight_hh.split(n, -2)
        # z_new as a function of its pre-activations: coefficients (M, B, N)
        cz1 = dt * (tz - z) * g1 * (1 - g1)
        czz = dt * g1 * (1 - tz * tz)
        cy2 = dt * (ty - y) * g2 * (1 - g2)
        cyy = dt * g2 * (1 - ty * ty)
        dzn_dy = rows(cz1, w1) + rows(czz, wz)
        # Wy @ dz_new/dy, then scaled by cyy
        dy_dy = (torch.diag_embed(1 - dt * g2) + rows(cy2, w2)
                 + cyy[..., :, None] * (self.weight_zy[:, None] @ dzn_dy))
        if self.state == "full":
            dzn_dz = 1 - dt * g1
            dy_dz = cyy[..., :, None] * self.weight_zy[:, None] * dzn_dz[..., None, :]
            j = torch.cat([torch.cat([dy_dy, dy_dz], -1),
                           torch.cat([dzn_dy, torch.diag_embed(dzn_dz)], -1)], -2)
        else:
            j = dy_dy
        jx = None
        if wrt_input:
            v1, v2, vz, vy = self.weight_ih.split(n, -2)
            dzn_dx = rows(cz1, v1) + rows(czz, vz)
            dyn_dx = rows(cy2, v2) + rows(cyy, vy) + cyy[..., :, None] * (
                self.weight_zy[:, None] @ dzn_dx)
            jx = torch.cat([dyn_dx, dzn_dx], -2) if self.state == "full" else dyn_dx
        return s_new, j, jx

    @classmethod
    def random(cls, input_size, hidden_size, p=0.5, n_networks=1, generator=None,
               dtype=torch.float64, dt=0.5, state="full"):
        u = uniform(p, n_networks, generator, dtype)
        n = hidden_size
        v = u(4 * n, input_size)
        return cls(v, u(3 * n, n), u(n, n), u(4 * n), scalar(dt, n_networks, v), state=state)
