"""Seed 002's weight construction: an LSTM (with a linear readout) that realises a given
discrete linear system x' = A x + B u, y = C x + D u, and the seed's fourth-order example."""

from __future__ import annotations

import numpy as np
import scipy.signal
import torch

from aelle.cells.lstm import LSTMCell
from aelle.explain.network import Network


def lstm_realising(a, b, c, d, scale: float = 1e-3, gate_bias: float = 100.0,
                   dtype: torch.dtype = torch.float64) -> Network:
    """N = n + m units: input and output gates open, forget gate shut (the cell state never
    carries over), candidate gate ``tanh(scale [B; I] u + [[A, 0], [0, 0]] h)``; the readout
    ``[C A^-1, D - C A^-1 B] / scale``. Near zero tanh is the identity, so the network is the
    system to O(scale^2); A must be invertible."""
    a, b, c, d = (np.atleast_2d(np.asarray(m, dtype=float)) for m in (a, b, c, d))
    n, m = b.shape
    if a.shape != (n, n) or c.shape[1] != n or d.shape != (c.shape[0], m):
        raise ValueError(f"inconsistent shapes A {a.shape}, B {b.shape}, C {c.shape}, D {d.shape}")
    if abs(np.linalg.det(a)) < 1e-12:
        raise ValueError("A must be invertible for seed 002's construction")
    nn_ = n + m
    w_g = scale * np.vstack([b, np.eye(m)])
    r_g = np.zeros((nn_, nn_))
    r_g[:n, :n] = a
    zeros_in, zeros_rec = np.zeros((nn_, m)), np.zeros((nn_, nn_))
    w_ih = np.vstack([zeros_in, zeros_in, w_g, zeros_in])
    w_hh = np.vstack([zeros_rec, zeros_rec, r_g, zeros_rec])
    ones = np.ones(nn_)
    bias = np.concatenate([gate_bias * ones, -gate_bias * ones, 0 * ones, gate_bias * ones])
    a_inv = np.linalg.inv(a)
    readout = np.hstack([c @ a_inv, d - c @ a_inv @ b]) / scale
    t = lambda x: torch.as_tensor(x, dtype=dtype)  # noqa: E731
    cell = LSTMCell(t(w_ih)[None], t(w_hh)[None], t(bias)[None])
    return Network(cell, t(readout), torch.zeros(c.shape[0], dtype=dtype))


def seed_system(ts: float = 0.01):
    """Seed 002's system: zpk(-4, [-9 +- 5i, -2 +- 50i], 5e5) sampled with a zero-order hold at
    ``ts``; (A, B, C, D) discrete, stable, fourth order, steady-state gain about 7.5351."""
    z, p, k = [-4.0], [-9 + 5j, -9 - 5j, -2 + 50j, -2 - 50j], 5e5
    a, b, c, d = scipy.signal.zpk2ss(z, p, k)
    ad, bd, cd, dd, _ = scipy.signal.cont2discrete((a, b, c, d), ts, method="zoh")
    return ad, bd, cd, dd
