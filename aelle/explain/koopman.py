"""A Koopman matrix of the hidden-state dynamics (seed 004, KANN, Naiman and Azencot).

Hidden states H (s sequences, n steps, k units) are written in the basis U_r of their leading r
right singular vectors, H~_t = H_t U_r; C = argmin sum_t |H~_t C - H~_{t+1}|_F^2 by least
squares; one step is predicted as H_{t+1} ~ H_t U_r C U_r^T (row vectors, as in the paper).
Each eigenvalue lambda_j of C gives its mode's memory horizon tau_j(eps) = log eps / log|lambda_j|
(infinite for |lambda_j| >= 1). Judged by the relative error of the predicted states,
e_rel = mean_{s,t} |h^KANN - h|^2 / |h|^2, and by the outputs: the readout of the predicted
states against the readout of the true ones: the fraction of decisions that change (the argmax
over several outputs, or the sign of each output), and the relative output error.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from torch import Tensor

from aelle.explain.network import Network, check_inputs


@dataclasses.dataclass(frozen=True)
class KoopmanResult:
    matrix: np.ndarray        # C (r, r)
    basis: np.ndarray         # U_r (k, r)
    eigenvalues: np.ndarray   # (r,) complex, by decreasing modulus
    modes: np.ndarray         # (k, r) complex: the eigenvectors of C in the state coordinates
    singular_values: np.ndarray
    epsilon: float
    relative_error: float     # e_rel of the one-step predictions
    accuracy_error: float | None   # fraction of decisions changed (None: no decision)
    output_error: float       # |G(h^KANN) - G(h)|^2 / |G(h)|^2, mean over states

    @property
    def memory_horizons(self) -> np.ndarray:
        return memory_horizon(self.eigenvalues, self.epsilon)

    def to_dict(self) -> dict:
        tau = self.memory_horizons
        return {"rank": int(self.matrix.shape[0]),
                "eigenvalues_re": self.eigenvalues.real.tolist(),
                "eigenvalues_im": self.eigenvalues.imag.tolist(),
                "memory_horizons": [None if not np.isfinite(x) else float(x) for x in tau],
                "epsilon": self.epsilon, "relative_error": self.relative_error,
                "accuracy_error": self.accuracy_error, "output_error": self.output_error}


def memory_horizon(eigenvalues: np.ndarray, epsilon: float = 1e-2) -> np.ndarray:
    """tau(eps) = log eps / log |lambda| steps; inf where |lambda| >= 1, 0 where lambda = 0."""
    if not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon must lie in (0, 1), got {epsilon}")
    mod = np.abs(np.asarray(eigenvalues))
    with np.errstate(divide="ignore"):
        tau = np.log(epsilon) / np.log(np.where(mod > 0, mod, 1e-300))
    return np.where(mod >= 1.0, np.inf, tau)


DECISIONS = ("argmax", "sign")


def koopman_states(states: np.ndarray | Tensor, rank: int | None = None,
                   rtol: float = 1e-6, epsilon: float = 1e-2,
                   readout=None, decision: str = "argmax") -> KoopmanResult:
    """KANN on hidden states (s, n, k). rank: basis size (default: the singular values above
    ``rtol`` times the largest). readout: a function of states (..., k) -> outputs (..., O).
    decision: what the outputs decide, "argmax" (a class; none for one output) or "sign"."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    h = np.asarray(states.detach().cpu() if isinstance(states, Tensor) else states, dtype=float)
    if h.ndim != 3 or h.shape[1] < 2:
        raise ValueError(f"states must be (sequences, steps >= 2, units), got {h.shape}")
    if not np.isfinite(h).all():
        raise ValueError("states hold NaN or infinite values")
    k = h.shape[2]
    flat = h.reshape(-1, k)
    _, sv, vt = np.linalg.svd(flat, full_matrices=False)
    if rank is None:
        rank = max(1, int((sv > rtol * sv[0]).sum())) if sv[0] > 0 else 1
    if not 1 <= rank <= k:
        raise ValueError(f"rank must lie in 1..{k}, got {rank}")
    basis = vt[:rank].T
    coef = h @ basis                                     # (s, n, r)
    x, y = coef[:, :-1].reshape(-1, rank), coef[:, 1:].reshape(-1, rank)
    c = np.linalg.lstsq(x, y, rcond=None)[0]
    eig, vec = np.linalg.eig(c.T)   # column convention: modes propagate as C^T v = lambda v
    order = np.argsort(-np.abs(eig), kind="stable")
    eig, vec = eig[order], vec[:, order]
    pred = (x @ c @ basis.T).reshape(h.shape[0], -1, k)   # h_{t+1} predicted from h_t
    true = h[:, 1:]
    norms = (true ** 2).sum(-1)
    rel = float(np.mean(((pred - true) ** 2).sum(-1) / np.where(norms > 0, norms, 1.0)))
    acc, out_err = None, float("nan")
    if readout is not None:
        yp, yt = np.asarray(readout(pred)), np.asarray(readout(true))
        den = (yt ** 2).sum()
        out_err = float(((yp - yt) ** 2).sum() / (den if den > 0 else 1.0))
        if decision == "sign":
            acc = float((np.sign(yp) != np.sign(yt)).mean())
        elif yt.shape[-1] > 1:
            acc = float((yp.argmax(-1) != yt.argmax(-1)).mean())
    return KoopmanResult(c, basis, eig, basis @ vec, sv, epsilon, rel, acc, out_err)


def koopman(network: Network, inputs: Tensor, warmup: int = 0, rank: int | None = None,
            rtol: float = 1e-6, epsilon: float = 1e-2, decision: str = "argmax") -> KoopmanResult:
    """KANN on the hidden states h (the layer's output) of ``network`` driven by ``inputs``
    (B, W + T, I), the first ``warmup`` steps dropped; the outputs judged through its readout."""
    inputs = check_inputs(network, inputs)
    if not 0 <= warmup <= inputs.shape[1] - 2:
        raise ValueError(f"warmup must leave at least 2 steps of {inputs.shape[1]}, got {warmup}")
    hidden = network.cell.output(network.run(inputs))[:, warmup:]
    w = network.readout_weight.numpy()
    b = network.readout_bias.numpy()
    return koopman_states(hidden, rank, rtol, epsilon, readout=lambda z: z @ w.T + b,
                          decision=decision)


def koopman_free_run(result: KoopmanResult, h0: np.ndarray, steps: int) -> np.ndarray:
    """The states the matrix alone predicts from h0 (B, k) over ``steps`` steps: (B, steps, k)."""
    coef = np.asarray(h0) @ result.basis
    out = []
    for _ in range(steps):
        coef = coef @ result.matrix
        out.append(coef @ result.basis.T)
    return np.stack(out, 1)
