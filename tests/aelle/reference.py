"""Slow, obvious references the fast paths are checked against: autograd Jacobians and a
per-sequence QR iteration."""

from __future__ import annotations

import torch
from torch.func import jacrev


def _diag_blocks(full: torch.Tensor, m: int, b: int) -> torch.Tensor:
    """(M, B, D, M, B, K) -> (M, B, D, K): the per-(network, sequence) blocks."""
    idx_m = torch.arange(m)[:, None]
    idx_b = torch.arange(b)[None, :]
    return full[idx_m, idx_b, :, idx_m, idx_b, :]


def autograd_jacobians(cell, s, x):
    """d tangent(s') / d tangent(s) and d tangent(s') / d x by torch.func.jacrev."""
    m, b = s.shape[0], s.shape[1]
    x = x.expand(m, *x.shape[1:]).clone()

    def f_state(v):
        return cell.tangent(cell.step(cell.with_tangent(s, v), x))

    def f_input(xx):
        return cell.tangent(cell.step(s, xx))

    j = _diag_blocks(jacrev(f_state)(cell.tangent(s)), m, b)
    jx = _diag_blocks(jacrev(f_input)(x), m, b)
    return j, jx


def autograd_spectrum(cell, inputs, warmup, t_on=1):
    """Algorithm 2 written plainly: one network, one sequence at a time, autograd Jacobians,
    Householder QR with positive diagonal. inputs (B, W + T, I); returns (B, D) exponents."""
    cell = cell.to(torch.float64)
    inputs = inputs.to(torch.float64)
    out = []
    for seq in inputs:
        s = cell.zero_state(1)
        q = torch.eye(cell.dim, dtype=torch.float64)
        gamma = torch.zeros(cell.dim, dtype=torch.float64)
        steps = seq.shape[0] - warmup
        for t, x_t in enumerate(seq):
            x = x_t.reshape(1, 1, -1)

            def f(v, s=s, x=x):
                return cell.tangent(cell.step(cell.with_tangent(s, v.reshape(1, 1, -1)), x))

            j = jacrev(f)(cell.tangent(s).reshape(-1)).reshape(cell.dim, cell.dim)
            s = cell.step(s, x)
            q = j @ q
            k = t - warmup + 1
            if t < warmup or k % t_on == 0 or k == steps:
                q, r = torch.linalg.qr(q)
                if t >= warmup:
                    gamma += torch.log(torch.diagonal(r).abs())
        out.append(gamma / steps)
    return torch.stack(out)
