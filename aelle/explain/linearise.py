"""A recurrent layer with its readout as a nonlinear state-space system, linearised around an
operating point (seed 002, "LSTM layer as a nonlinear dynamical system").

With x_t = s_{t-1} (the state the step receives), ``x_{t+1} = f(x_t, u_t)``, ``y_t = W out(f(x_t,
u_t)) + b``; around (x*, u*):

    A = df/dx,  B = df/du,  C = W P A,  D = W P B      (P: the rows of s that are the output h)

which is the seed's construction (C_nn = F A_nn, D_nn = F B_nn). Poles are eig(A); the
transmission zeros of each input-output channel are the finite generalised eigenvalues of the
Rosenbrock pencil; the static gain is D, the steady-state gain C (I - A)^-1 B + D, and the
frequency response H(e^{jw}) = C (e^{jw} I - A)^-1 B + D.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg
import scipy.optimize
import torch
from torch import Tensor

from aelle.explain.jacobians import state_input_jacobians
from aelle.explain.network import Network


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
    """state (S,), input (I,); residual |f(x*, u*) - x*| (0 for a fixed point; the operating
    point of a driven trajectory need not be one)."""

    state: np.ndarray
    input: np.ndarray
    residual: float


@dataclasses.dataclass(frozen=True)
class Linearisation:
    a: np.ndarray          # (S, S)
    b: np.ndarray          # (S, I)
    c: np.ndarray          # (O, S)
    d: np.ndarray          # (O, I): the static gain
    point: OperatingPoint
    poles: np.ndarray      # (S,) complex, by decreasing modulus
    zeros: list[list[np.ndarray]]   # zeros[o][i]: finite transmission zeros of channel i -> o
    dc_gain: np.ndarray    # (O, I): steady-state gain C (I - A)^-1 B + D (inf where a pole is 1)

    @property
    def spectral_radius(self) -> float:
        return float(np.abs(self.poles).max())

    def frequency_response(self, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(w (n,), H (n, O, I) complex) on 0 <= w <= pi radians per step."""
        return frequency_response(self, np.linspace(0.0, np.pi, n))

    def to_dict(self) -> dict:
        return {
            "poles_re": self.poles.real.tolist(), "poles_im": self.poles.imag.tolist(),
            "zeros": [[{"re": z.real.tolist(), "im": z.imag.tolist()} for z in row]
                      for row in self.zeros],
            "static_gain": self.d.tolist(), "dc_gain": self.dc_gain.tolist(),
            "spectral_radius": self.spectral_radius,
            "operating_residual": self.point.residual,
        }


def operating_point(network: Network, u: Tensor | None = None, steps: int = 500,
                    s0: Tensor | None = None) -> OperatingPoint:
    """The state reached by holding the input at ``u`` (default 0) for up to ``steps`` steps
    from ``s0`` (default 0), stopping once a step moves it less than 1e-14: the fixed point for
    constant input of a contracting network."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    u = _vector(u, network.input_size, network.dtype, "u")
    s = _vector(s0, network.state_size, network.dtype, "s0")
    with torch.no_grad():
        for k in range(steps):
            nxt = network.step(s[None], u[None])[0]
            if k % 25 == 0 and float((nxt - s).abs().max()) < 1e-14:
                s = nxt
                break
            s = nxt
        residual = float((network.step(s[None], u[None])[0] - s).norm())
    return OperatingPoint(s.numpy(), u.numpy(), residual)


def linearise(network: Network, point: OperatingPoint | None = None) -> Linearisation:
    """The state-space linearisation of ``network`` at ``point`` (default:
    :func:`operating_point`)."""
    point = operating_point(network) if point is None else point
    s = torch.as_tensor(point.state, dtype=network.dtype)[None]
    u = torch.as_tensor(point.input, dtype=network.dtype)[None]
    _, a, b = state_input_jacobians(network, s, u)
    a, b = a[0].numpy(), b[0].numpy()
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("the Jacobians at the operating point are not finite")
    project = _output_rows(network)
    w = network.readout_weight.numpy()
    c, d = w @ project @ a, w @ project @ b
    poles = np.linalg.eigvals(a)
    poles = poles[np.argsort(-np.abs(poles), kind="stable")]
    zeros = [[channel_zeros(a, b[:, [i]], c[[o]], d[[o]][:, [i]]) for i in range(b.shape[1])]
             for o in range(c.shape[0])]
    return Linearisation(a, b, c, d, point, poles, zeros, _dc_gain(a, b, c, d))


def frequency_response(lin: Linearisation, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eye = np.eye(lin.a.shape[0])
    h = np.stack([lin.c @ np.linalg.solve(np.exp(1j * wk) * eye - lin.a, lin.b) + lin.d
                  for wk in np.asarray(w, dtype=float)])
    return np.asarray(w, dtype=float), h


def channel_zeros(a, b, c, d, tol: float = 1e-9) -> np.ndarray:
    """Finite invariant zeros of a single-input single-output (A, b, c, d)."""
    n = a.shape[0]
    m = np.block([[a, b], [c, d]])
    e = np.zeros_like(m)
    e[:n, :n] = np.eye(n)
    vals = scipy.linalg.eigvals(m, e)
    finite = vals[np.isfinite(vals) & (np.abs(vals) < 1.0 / tol)]
    return np.sort_complex(finite)


def pole_distance(found: np.ndarray, true: np.ndarray) -> float:
    """The largest distance from a true pole to the found pole matched to it (a one-to-one
    assignment minimising the total distance); the found set may hold extra poles."""
    found, true = np.asarray(found), np.asarray(true)
    if len(found) < len(true):
        raise ValueError(f"{len(true)} true poles but only {len(found)} found")
    cost = np.abs(true[:, None] - found[None, :])
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    return float(cost[rows, cols].max())


def _dc_gain(a, b, c, d) -> np.ndarray:
    m = np.eye(a.shape[0]) - a
    if np.linalg.cond(m) > 1e12:
        return np.full(d.shape, np.inf)
    return c @ np.linalg.solve(m, b) + d


def _output_rows(network: Network) -> np.ndarray:
    """P (N, S): out(s) = P s for the cells' outputs (the output is a slice of the state)."""
    probe = torch.eye(network.state_size, dtype=network.dtype)
    return network.cell.output(probe).T.numpy()


def _vector(v, size: int, dtype, name: str) -> Tensor:
    if v is None:
        return torch.zeros(size, dtype=dtype)
    v = torch.as_tensor(v, dtype=dtype).reshape(-1)
    if v.numel() != size:
        raise ValueError(f"{name} must have {size} values, got {v.numel()}")
    return v
