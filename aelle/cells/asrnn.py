"""Antisymmetric RNN, eq. (3.3)-(3.4):

h_t = h_{t-1} + eps tanh((U - U^T - gamma I) h_{t-1} + W x_t + b).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from aelle.cells.base import Cell, affine, per_net, rows, scalar
from aelle.cells.random_init import uniform
from aelle.cells.registry import register


@register("asrnn")
@dataclasses.dataclass(frozen=True)
class ASRNNCell(Cell):
    weight_ih: Tensor  # (M, N, I): W
    weight_hh: Tensor  # (M, N, N): U, free; the antisymmetric part is taken here
    bias: Tensor       # (M, N)
    eps: Tensor        # (M,) step size
    gamma: Tensor      # (M,) diffusion

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[-1]

    def recurrent(self) -> Tensor:
        u = self.weight_hh
        eye = torch.eye(u.shape[-1], dtype=u.dtype, device=u.device)
        return u - u.mT - per_net(self.gamma, 3) * eye

    def _pre(self, s, x, a_mat):
        return affine(s, a_mat) + affine(x, self.weight_ih, self.bias)

    def step(self, s, x):
        return s + per_net(self.eps, 3) * torch.tanh(self._pre(s, x, self.recurrent()))

    def jacobians(self, s, x, wrt_input=False):
        a_mat = self.recurrent()
        t = torch.tanh(self._pre(s, x, a_mat))
        d = per_net(self.eps, 3) * (1 - t * t)
        j = rows(d, a_mat) + torch.eye(self.hidden_size, dtype=s.dtype, device=s.device)
        jx = rows(d, self.weight_ih) if wrt_input else None
        return s + per_net(self.eps, 3) * t, j, jx

    @classmethod
    def random(cls, input_size, hidden_size, p=0.5, n_networks=1, generator=None,
               dtype=torch.float64, eps=0.1, gamma=0.01):
        u = uniform(p, n_networks, generator, dtype)
        w = u(hidden_size, input_size)
        return cls(w, u(hidden_size, hidden_size), u(hidden_size),
                   scalar(eps, n_networks, w), scalar(gamma, n_networks, w))
