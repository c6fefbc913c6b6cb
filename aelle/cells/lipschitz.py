"""Lipschitz RNN (Erichson et al. 2021), Chapter 3 Appendix C, forward Euler:

h_t = h_{t-1} + dt (alpha A h_{t-1} + tanh(W h_{t-1} + U x_t + b)),
A = (1 - beta_A)(M_A + M_A^T) + beta_A (M_A - M_A^T) - gamma_A I, and W likewise from M_W.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from aelle.cells.base import Cell, affine, per_net, rows, scalar
from aelle.cells.random_init import uniform
from aelle.cells.registry import register


@dataclasses.dataclass(frozen=True)
class LipschitzScalars:
    """The fixed scalars of a Lipschitz RNN: the Euler step ``dt``, the weight ``alpha`` of A,
    and the symmetric/skew mix ``beta`` and diagonal shifts ``gamma_a``, ``gamma_w`` that
    compose A and W. The defaults are those of every Lipschitz and Noisy network built here."""

    dt: float = 0.03
    alpha: float = 1.0
    beta: float = 0.75
    gamma_a: float = 0.001
    gamma_w: float = 0.001


DEFAULTS = LipschitzScalars()


def symmetric_skew(m: Tensor, beta: Tensor, gamma: Tensor) -> Tensor:
    """(1 - beta)(M + M^T) + beta (M - M^T) - gamma I for stacked (M, N, N) matrices."""
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    b, g = per_net(beta, 3), per_net(gamma, 3)
    return (1 - b) * (m + m.mT) + b * (m - m.mT) - g * eye


@register("lipschitz")
@dataclasses.dataclass(frozen=True)
class LipschitzCell(Cell):
    weight_ih: Tensor  # (M, N, I): U
    mat_a: Tensor      # (M, N, N): A, already composed from M_A (see symmetric_skew)
    mat_w: Tensor      # (M, N, N): W, already composed from M_W
    bias: Tensor       # (M, N)
    dt: Tensor         # (M,)
    alpha: Tensor      # (M,)

    @property
    def hidden_size(self) -> int:
        return self.mat_a.shape[-1]

    def _parts(self, s, x):
        t = torch.tanh(affine(s, self.mat_w) + affine(x, self.weight_ih, self.bias))
        return per_net(self.alpha, 3) * affine(s, self.mat_a), t

    def step(self, s, x):
        lin, t = self._parts(s, x)
        return s + per_net(self.dt, 3) * (lin + t)

    def jacobians(self, s, x, wrt_input=False):
        lin, t = self._parts(s, x)
        dt = per_net(self.dt, 3)
        d = dt * (1 - t * t)
        eye = torch.eye(self.hidden_size, dtype=s.dtype, device=s.device)
        j = eye + (per_net(self.dt * self.alpha, 3) * self.mat_a)[:, None] + rows(d, self.mat_w)
        jx = rows(d, self.weight_ih) if wrt_input else None
        return s + dt * (lin + t), j, jx

    @classmethod
    def random(cls, input_size, hidden_size, p=0.5, n_networks=1, generator=None,
               dtype=torch.float64, dt=DEFAULTS.dt, alpha=DEFAULTS.alpha, beta=DEFAULTS.beta,
               gamma_a=DEFAULTS.gamma_a, gamma_w=DEFAULTS.gamma_w):
        u = uniform(p, n_networks, generator, dtype)
        v = u(hidden_size, input_size)
        sc = lambda val: scalar(val, n_networks, v)  # noqa: E731
        a = symmetric_skew(u(hidden_size, hidden_size), sc(beta), sc(gamma_a))
        w = symmetric_skew(u(hidden_size, hidden_size), sc(beta), sc(gamma_w))
        return cls(v, a, w, u(hidden_size), sc(dt), sc(alpha))
