"""Jacobians of a network's step over its full state, from the cell's analytic formulas where
the cell provides them for the full state, else by autograd (any cell with a ``step``)."""

from __future__ import annotations

import torch
from torch import Tensor

from aelle.explain.network import Network


def state_input_jacobians(network: Network, s: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(s_next, A, B)`` at states s (B, S) and inputs u (B, I): A = ds'/ds (B, S, S),
    B = ds'/du (B, S, I)."""
    cell = network.cell
    if cell.tangent_index() is None:
        try:
            s_next, a, b = cell.jacobians(s[None], u[None], wrt_input=True)
        except NotImplementedError:
            a = b = None
        if a is not None and b is not None:
            return s_next[0], a[0], b[0]
    return autograd_jacobians(network, s, u)


def autograd_jacobians(network: Network, s: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The same by ``torch.func.jacrev`` of the cell's step, one (state, input) pair at a time."""

    def one(si, ui):
        return network.cell.step(si[None, None], ui[None, None])[0, 0]

    jac = torch.vmap(torch.func.jacrev(one, argnums=(0, 1)))
    with torch.enable_grad():
        a, b = jac(s, u)
    return torch.vmap(one)(s, u).detach(), a.detach(), b.detach()
