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
from aelle.parallel import run_split, split_count

# QR work (sequences x D x k^2) per thread below which threads cost more than they save: the
# split pays off where single-threaded LAPACK dominates a step; the J formation and J.Q of a
# thin frame (k << D) run on all threads anyway (LSTM and GRU, 2-core CPU)
_SPLIT_MIN_WORK = 1_500_000


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
    Every tensor lies on the cell's device (a CUDA cell's results stay on the GPU).

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
    threads: int | None = None,
) -> SpectrumResult:
    """Leading k Lyapunov exponents of ``cell`` driven by ``inputs``.

    inputs: (B, W + T, I) shared by all networks of the cell, or (M, B, W + T, I).
    on_divergence: "raise" (SpectrumDivergedError naming step and sequence) or "mark"
    (the sequence is dropped from the mean and flagged in ``diverged``).
    threads: on a CPU the sequences are split over this many threads, each running torch
    single-threaded (default: torch.get_num_threads(), at most B); ignored on a GPU and for a
    cell that is not ``thread_safe`` (a StepCell), which runs one batch on all threads.
    """
    _check(cell, inputs, warmup, t_on, k, dtype, on_divergence, threads)
    m, d = cell.n_networks, cell.dim
    k = d if k is None else k
    cell = cell.to(dtype)
    x_all = inputs.to(device=cell.device, dtype=dtype)
    if x_all.ndim == 3:
        x_all = x_all[None]
    b = x_all.shape[1]
    steps = x_all.shape[2] - warmup
    s0 = cell.zero_state(b) if h0 is None else _initial_state(cell, h0, b)
    loop = _Iteration(cell, warmup, t_on, k, on_divergence == "raise", return_ftle, return_q)

    if not cell.thread_safe:
        parts = 1
    elif threads is None:
        parts = split_count(b, cell.device)
        if m * b * d * k * k < _SPLIT_MIN_WORK * parts:  # too little LAPACK work per thread
            parts = 1
    else:
        parts = 1 if cell.device.type != "cpu" else min(threads, b)
    runs = run_split(lambda sl: loop.run(x_all[:, sl], s0[:, sl], sl.start), b, parts)
    raised = [r for r in runs if isinstance(r, Divergence)]
    if raised:
        raise SpectrumDivergedError(min(raised, key=lambda v: (v.step, v.network, v.sequence)))

    gamma = torch.cat([r.gamma for r in runs], 1)
    diverged = torch.cat([r.diverged for r in runs], 1)
    divergences = sorted((v for r in runs for v in r.divergences),
                         key=lambda v: (v.step, v.network, v.sequence))
    per_seq = (gamma / steps).masked_fill(diverged[..., None], float("nan"))
    mean, std = _mean_std(per_seq, ~diverged)
    squeeze = (lambda v: v[0]) if (m == 1 and inputs.ndim == 3) else (lambda v: v)
    ftle = torch.cat([torch.stack(r.ftle, -2) for r in runs], 1) if return_ftle else None
    return SpectrumResult(
        exponents=squeeze(mean),
        per_sequence=squeeze(per_seq),
        std=squeeze(std),
        diverged=squeeze(diverged),
        divergences=tuple(divergences),
        steps=steps,
        warmup=warmup,
        t_on=t_on,
        ftle=squeeze(ftle) if return_ftle else None,
        ftle_steps=(torch.tensor(runs[0].ftle_steps, device=cell.device) if return_ftle
                    else None),
        q=squeeze(torch.cat([r.frame.tensor() for r in runs], 1)) if return_q else None,
    )


@dataclasses.dataclass
class _Run:
    """What the iteration over some of the sequences leaves behind."""

    gamma: Tensor              # (M, b, k) summed log|R_ii|, float64
    diverged: Tensor           # (M, b)
    divergences: list[Divergence]
    ftle: list[Tensor]
    ftle_steps: list[int]
    frame: Frame


@dataclasses.dataclass(frozen=True)
class _Iteration:
    """Algorithm 2 over a slice of the sequences (all slices share one cell)."""

    cell: Cell
    warmup: int
    t_on: int
    k: int
    raise_on_divergence: bool
    return_ftle: bool
    return_q: bool

    def run(self, x: Tensor, s: Tensor, offset: int) -> _Run | Divergence:
        """x (M, b, W + T, I), s (M, b, S); sequence numbers in messages start at ``offset``.

        Returns the first Divergence instead of raising, so that the caller can report the
        earliest over all slices.
        """
        cell, warmup, t_on, k = self.cell, self.warmup, self.t_on, self.k
        m, b, total = cell.n_networks, x.shape[1], x.shape[2]
        frame = Frame.identity((m, b), cell.dim, k, x.dtype, x.device,
                               track_signs=self.return_q)
        out = _Run(gamma=torch.zeros(m, b, k, dtype=torch.float64, device=x.device),
                   diverged=torch.zeros(m, b, dtype=torch.bool, device=x.device),
                   divergences=[], ftle=[], ftle_steps=[], frame=frame)
        floor = torch.finfo(x.dtype).tiny  # an exactly collapsed direction (dead ReLU) logs this
        since_qr = 0

        def flag(values: Tensor, t: int, reason: str) -> Divergence | None:
            """Mark sequences whose ``values`` (M, b, ...) are not all finite; one sync if fine."""
            # NaN and inf survive a sum, which is far cheaper than an elementwise isfinite.
            finite = torch.isfinite(values.flatten(2).sum(-1))
            if bool(finite.all()):
                return None
            bad = ~finite & ~out.diverged
            for net, seq in bad.nonzero().tolist():
                div = Divergence(t, net, seq + offset, reason, t < warmup)
                if self.raise_on_divergence:
                    return div
                out.divergences.append(div)
            out.diverged.logical_or_(bad)
            return None

        with torch.no_grad():
            for t in range(total):
                s, j, _ = cell.jacobians(s, x[:, :, t])
                if div := flag(s, t, "non-finite state"):
                    return div
                if out.divergences:  # keep LAPACK away from NaN: park diverged sequences
                    s = s.masked_fill(out.diverged[..., None], 0.0)
                    j = j.masked_fill(out.diverged[..., None, None], 0.0)
                frame = frame.apply(j)
                if t < warmup:
                    frame, _ = frame.orthonormalise()
                    continue
                since_qr += 1
                if since_qr < t_on and t < total - 1:
                    continue
                frame, r = frame.orthonormalise()
                # a non-finite Jacobian (or a frame that overflowed between QRs) reaches diag R
                if div := flag(r, t, "non-finite Jacobian"):
                    return div
                if out.divergences:
                    frame = frame.park(out.diverged)
                    r = r.masked_fill(out.diverged[..., None], 1.0)
                log_r = torch.log(r.clamp_min(floor)).double()
                out.gamma += log_r
                if self.return_ftle:
                    out.ftle.append(log_r / since_qr)
                    out.ftle_steps.append(t - warmup)
                since_qr = 0
        out.frame = frame
        return out


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
    return h0.expand(shape).to(device=cell.device, dtype=cell.dtype, copy=True)


def _check(cell, inputs, warmup, t_on, k, dtype, on_divergence, threads) -> None:
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
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
