"""The Lyapunov views the service computes but did not show: the spectrum across epochs, the
finite-time exponents (FTLE) along the probe, and how the Lyapunov vectors (the columns of Q)
line up with the readout: for output o and vector j, the mean over sequences of
|w_o . q_j^h| / (|w_o| |q_j^h|), q_j^h the vector's hidden coordinates (the first N)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from aelle.explain.network import Network, check_inputs
from aelle.spectra import lyapunov_spectrum


@dataclasses.dataclass(frozen=True)
class LyapunovViews:
    exponents: np.ndarray      # (k,)
    ftle: np.ndarray           # (n_qr, k): mean over sequences
    ftle_steps: np.ndarray     # (n_qr,)
    alignment: np.ndarray      # (O, k)
    epochs: tuple[int, ...]
    across_epochs: np.ndarray  # (E, k_max), NaN-padded: the spectra given, one row an epoch

    def to_dict(self) -> dict:
        nan = lambda a: np.where(np.isfinite(a), a, None).tolist()  # noqa: E731
        return {"exponents": self.exponents.tolist(), "max_exponent": float(self.exponents[0]),
                "alignment": self.alignment.tolist(),
                "ftle_final": self.ftle[-1].tolist() if len(self.ftle) else [],
                "epochs": list(self.epochs), "across_epochs": nan(self.across_epochs)}


def spectra_across_epochs(spectra: Sequence[Sequence[float]]) -> np.ndarray:
    """(E, k_max) with NaN where a spectrum is shorter than the longest."""
    if not spectra:
        return np.zeros((0, 0))
    width = max(len(s) for s in spectra)
    out = np.full((len(spectra), width), np.nan)
    for i, s in enumerate(spectra):
        out[i, :len(s)] = np.asarray(s, dtype=float)
    return out


def readout_alignment(q: Tensor, readout_weight: Tensor, hidden: int) -> np.ndarray:
    """q (B, D, k) Lyapunov vectors, readout (O, N) -> (O, k) mean |cosine|."""
    qh = q[:, :hidden].to(torch.float64)                      # (B, N, k)
    w = readout_weight.to(torch.float64)
    dots = torch.einsum("on,bnk->bok", w, qh).abs()
    norms = w.norm(dim=-1)[None, :, None] * qh.norm(dim=1)[:, None, :]
    return (dots / norms.clamp_min(1e-300)).mean(0).numpy()


def lyapunov_views(network: Network, inputs: Tensor, warmup: int = 0, k: int | None = None,
                   epochs: Sequence[int] = (), spectra: Sequence[Sequence[float]] = (),
                   t_on: int = 1) -> LyapunovViews:
    """The spectrum of ``network`` on ``inputs`` (B, W + T, I) with its FTLE series and readout
    alignment; ``spectra`` (one per entry of ``epochs``) are the trial's reported spectra."""
    if len(epochs) != len(spectra):
        raise ValueError(f"{len(epochs)} epochs but {len(spectra)} spectra")
    inputs = check_inputs(network, inputs)
    cell = network.cell
    if cell.tangent_index() is not None:
        raise ValueError("lyapunov_views needs the cell's full state convention")
    res = lyapunov_spectrum(cell, inputs, warmup=warmup, t_on=t_on, k=k, dtype=torch.float64,
                            return_ftle=True, return_q=True, on_divergence="mark")
    ok = ~res.diverged
    ftle = res.ftle[ok].mean(0) if ok.any() else res.ftle.mean(0)
    return LyapunovViews(
        res.exponents.numpy(), ftle.numpy(), res.ftle_steps.numpy(),
        readout_alignment(res.q[ok] if ok.any() else res.q, network.readout_weight,
                          network.hidden_size),
        tuple(int(e) for e in epochs), spectra_across_epochs(spectra))
