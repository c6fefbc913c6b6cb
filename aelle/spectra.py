"""Lyapunov spectra of recurrent maps by the QR iteration (Chapter 2, Algorithms 1 and 2).

Conventions (they differ from the dissertation's published code on two points):
- exponents are natural-log growth rates per step, from |R_ii| (that code used log2);
- Jacobians are J[i, j] = d s'_i / d s_j and the frame evolves as Q <- J Q (that code multiplied
  by the transposed Jacobian).
h0 = 0 unless given; Q0 = the first k columns of I; during the W warm-up steps Q is
orthonormalised every step and nothing is accumulated; then the QR runs every ``t_on`` steps
(and once more at the end if T is not a multiple of t_on, so that every step counts).
Exponents are accumulated and returned in float64 whatever the computation dtype.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from aelle.cells.base import Cell
from aelle.frames import Frame


@dataclasses.dataclass(frozen=True)
class Divergence:
    """Where a sequence's state or tangent frame stopped being finite."""

    step: int          # index into the W + T input steps (0-based)
    network: int
    sequence: int
    reason: str
    in_warmup: bool

    def __str__(self) -> str:
        phase = "warm-up step" if self.in_warmup else "step"
        return (f"{self.reason} at {phase} {self.step} of sequence {self.sequence}"
                f" (network {self.network})")


class SpectrumDivergedError(ArithmeticError):
    """The state or the Jacobian of a sequence became NaN or infinite."""

    def __init__(self, divergence: Divergence):
        super().__init__(str(divergence))
        self.divergence = divergence


@dataclasses.dataclass(frozen=True)
class SpectrumResult:
    """A spectrum. Shapes are for one network; a stacked cell of M > 1 networks prefixes M.

    exponents (k,), per_sequence (B, k), std (k,), diverged (B,): sequences left out of the mean
    because they diverged (their per_sequence rows are NaN). With ``return_ftle``: ftle
    (B, n_qr, k), log|R_ii| / steps covered by each QR, and ftle_steps (n_qr,), the step
    (0-based, after warm-up) at which each QR ran. With ``return_q``: q (B, D, k).
    """

    exponents: Tensor
    per_sequence: Tensor
    std: Tensor
    diverged: Tensor
    divergences: tuple[Divergence, ...]
    steps: int
    warmup: int
    t_on: int
    ftle: Tensor | None = None
    ftle_steps: Tensor | None = None
    q: Tensor | None = None

    @property
    def is_diverged(self) -> bool:
        return bool(self.diverged.any())


def lyapunov_spectrum(
    cell: Cell,
    inputs: Tensor,
    warmup: int = 0,
    t_on: int = 1,
    k: int | None = None,
    dtype: torch.dtype = torch.float32,
    *,
    return_ftle: bool = False,
    return_q: bool = False,
    on_divergence: str = "raise",
    h0: Tensor | None = None,
) -> SpectrumResult:
    """Leading k Lyapunov exponents of ``cell`` driven by ``inputs``.

    inputs: (B, W + T, I) shared by all networks of the cell, or (M, B, W + T, I).
    on_divergence: "raise" (SpectrumDivergedError naming step and sequence) or "mark"
    (the sequence is dropped from the mean and flagged in ``diverged``).
    """
    _check(cell, inputs, warmup, t_on, k, dtype, on_divergence)
    m, d = cell.n_networks, cell.dim
    k = d if k is None else k
    cell = cell.to(dtype)
    x_all = inputs.to(device=cell.device, dtype=dtype)
    if x_all.ndim == 3:
        x_all = x_all[None]
    b, total = x_all.shape[1], x_all.shape[2]
    steps = total - warmup

    s = cell.zero_state(b) if h0 is None else _initial_state(cell, h0, b).to(dtype)
    frame = Frame.identity((m, b), d, k, dtype, cell.device)
    gamma = torch.zeros(m, b, k, dtype=torch.float64, device=cell.device)
    diverged = torch.zeros(m, b, dtype=torch.bool, device=cell.device)
    divergences: list[Divergence] = []
    ftle, ftle_steps = [], []
    floor = torch.finfo(dtype).tiny  # an exactly collapsed direction (dead ReLU) logs this
    since_qr = 0

    def check(values: Tensor, t: int, reason: str) -> None:
        """Flag sequences whose ``values`` (M, B, ...) are not all finite; one sync when fine."""
        # NaN and inf survive a sum, which is far cheaper than an elementwise isfinite.
        finite = torch.isfinite(values.flatten(2).sum(-1))
        if bool(finite.all()):
            return
        bad = ~finite & ~diverged
        for net, seq in bad.nonzero().tolist():
            div = Divergence(t, net, seq, reason, t < warmup)
            if on_divergence == "raise":
                raise SpectrumDivergedError(div)
            divergences.append(div)
        diverged.logical_or_(bad)

    with torch.no_grad():
        for t in range(total):
            s, j, _ = cell.jacobians(s, x_all[:, :, t])
            check(s, t, "non-finite state")
            if divergences:  # keep LAPACK away from NaN: park diverged sequences at zero
                s = s.masked_fill(diverged[..., None], 0.0)
                j = j.masked_fill(diverged[..., None, None], 0.0)
            frame = frame.apply(j)
            if t < warmup:
                frame, _ = frame.orthonormalise()
                continue
            since_qr += 1
            if since_qr < t_on and t < total - 1:
                continue
            check(frame.explicit, t, "non-finite Jacobian")
            if divergences:
                frame = Frame(frame.explicit.masked_fill(diverged[..., None, None], 0.0), k=k,
                              signs=frame.signs)
            frame, r = frame.orthonormalise()
            log_r = torch.log(r.clamp_min(floor)).double()
            if divergences:
                log_r = log_r.masked_fill(diverged[..., None], 0.0)
            gamma += log_r
            if return_ftle:
                ftle.append(log_r / since_qr)
                ftle_steps.append(t - warmup)
            since_qr = 0

    per_seq = (gamma / steps).masked_fill(diverged[..., None], float("nan"))
    mean, std = _mean_std(per_seq, ~diverged)
    squeeze = (lambda v: v[0]) if (m == 1 and inputs.ndim == 3) else (lambda v: v)
    return SpectrumResult(
        exponents=squeeze(mean),
        per_sequence=squeeze(per_seq),
        std=squeeze(std),
        diverged=squeeze(diverged),
        divergences=tuple(divergences),
        steps=steps,
        warmup=warmup,
        t_on=t_on,
        ftle=squeeze(torch.stack(ftle, -2)) if return_ftle else None,
        ftle_steps=torch.tensor(ftle_steps) if return_ftle else None,
        q=squeeze(frame.tensor()) if return_q else None,
    )


def _mean_std(per_seq: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and (unbiased) standard deviation over the sequences that did not diverge."""
    n = keep.sum(-1, keepdim=True).to(per_seq.dtype)  # (M, 1)
    vals = per_seq.nan_to_num(0.0)
    mean = vals.sum(-2) / n
    dev = (vals - mean[:, None]).masked_fill(~keep[..., None], 0.0)
    var = (dev * dev).sum(-2) / (n - 1).clamp_min(1)
    return mean, var.sqrt().masked_fill(n == 0, float("nan"))


def _initial_state(cell: Cell, h0: Tensor, batch: int) -> Tensor:
    shape = (cell.n_networks, batch, cell.state_size)
    if h0.ndim == 2:
        h0 = h0[None]
    if h0.shape[1:] != shape[1:] or h0.shape[0] not in (1, shape[0]):
        raise ValueError(f"h0 must have shape (B, S) = {shape[1:]} or (M, B, S) = {shape}, "
                         f"got {tuple(h0.shape)}")
    return h0.expand(shape).to(cell.device).clone()


def _check(cell, inputs, warmup, t_on, k, dtype, on_divergence) -> None:
    if not isinstance(cell, Cell):
        raise TypeError(f"expected an aelle Cell (see aelle.cell_for), got {type(cell).__name__}")
    if not isinstance(inputs, Tensor) or inputs.ndim not in (3, 4):
        raise ValueError("inputs must be a tensor (B, W + T, input_size) or "
                         f"(M, B, W + T, input_size), got {getattr(inputs, 'shape', inputs)}")
    if inputs.shape[-1] != cell.input_size:
        raise ValueError(f"inputs have {inputs.shape[-1]} features; the cell expects "
                         f"{cell.input_size}")
    if inputs.ndim == 4 and inputs.shape[0] not in (1, cell.n_networks):
        raise ValueError(f"inputs for {inputs.shape[0]} networks given to a stack of "
                         f"{cell.n_networks}")
    if inputs.shape[-3] < 1:
        raise ValueError("inputs hold no sequence (B = 0)")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    if inputs.shape[-2] <= warmup:
        raise ValueError(f"inputs have {inputs.shape[-2]} steps, which leaves none after the "
                         f"warm-up of {warmup}")
    if not isinstance(t_on, int) or t_on < 1:
        raise ValueError(f"t_on must be a positive integer, got {t_on!r}")
    if k is not None and (not isinstance(k, int) or not 1 <= k <= cell.dim):
        raise ValueError(f"k must be an integer in [1, {cell.dim}], got {k!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
    if on_divergence not in ("raise", "mark"):
        raise ValueError(f"on_divergence must be 'raise' or 'mark', got {on_divergence!r}")
