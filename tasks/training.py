"""The training loop: task-agnostic, one callback after every epoch.

``run_trial`` trains one network of a task, takes its validation loss and Lyapunov spectrum after
each epoch (and, by default, once before training: epoch 0) and hands an :class:`EpochReport` to
the callback; a callback that returns False stops the trial (pruned). A network whose training
or validation loss turns non-finite on the task's own inputs ends with the outcome "diverged",
carrying the epoch and the reason; it never raises. A spectrum probe that overflows while the
loss is finite (the probe is longer than the task's sequences, so a fast-growing state can leave
the floating-point range there and nowhere else) is a fact about the probe, not the network:
that epoch reports no spectrum and says why in ``probe_error``, and training goes on. Bad
parameters or settings raise ValueError before any training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import aelle
from aelle.spectra import SpectrumDivergedError
from tasks.base import SPECTRUM_DTYPES, Settings, Task, TrialRun, resolve_device
from tasks.registry import get


@dataclass(frozen=True)
class EpochReport:
    epoch: int                     # 0: before training
    value: float                   # validation loss
    train_loss: float | None       # mean training loss of the epoch (None at epoch 0)
    spectrum: np.ndarray | None    # (k,) float64 exponents in QR column order; None if not taken
    train_seconds: float
    spectrum_seconds: float
    elapsed: float                 # seconds since the trial started
    probe_error: str | None = None  # why the spectrum probe gave no finite spectrum, if it did not

    @property
    def max_le(self) -> float | None:
        return None if self.spectrum is None else float(self.spectrum.max())

    @property
    def mean_le(self) -> float | None:
        return None if self.spectrum is None else float(self.spectrum.mean())


@dataclass
class TrialOutcome:
    state: str                      # "complete", "pruned" or "diverged"
    value: float | None             # the last finite validation loss
    epochs: int                     # epochs trained
    reason: str | None = None       # why it was pruned or diverged
    reports: list[EpochReport] = field(default_factory=list)
    run: TrialRun | None = field(default=None, repr=False)  # the trained network and its data


class Diverged(Exception):
    def __init__(self, epoch: int, reason: str):
        super().__init__(f"diverged at epoch {epoch}: {reason}")
        self.epoch, self.reason = epoch, reason


Callback = Callable[[EpochReport], bool | None]


def run_trial(task: Task | str, params: dict[str, Any], settings: Settings | dict | None = None,
              *, seed: int = 0, callback: Callback | None = None) -> TrialOutcome:
    """Train ``params`` on ``task``; deterministic on the CPU for a given seed."""
    task = get(task) if isinstance(task, str) else task
    settings = task.resolve(params, settings)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    device = resolve_device(settings.device)
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        run = task.build(params, settings, seed, device)
        return _loop(run, settings, callback)


def _loop(run, settings: Settings, callback: Callback | None) -> TrialOutcome:
    outcome = TrialOutcome("complete", None, 0, run=run)
    try:
        return _epochs(run, settings, callback, outcome)
    finally:
        # a run that holds a training loop of its own lets it end, or stops it
        close = getattr(run, "close", None)
        if close is not None:
            close(outcome.state == "complete" and outcome.epochs == settings.epochs)


def _epochs(run, settings: Settings, callback: Callback | None,
            outcome: TrialOutcome) -> TrialOutcome:
    start = time.perf_counter()
    first = 0 if settings.report_initial else 1
    for epoch in range(first, settings.epochs + 1):
        try:
            report = _epoch(run, settings, epoch, start)
        except Diverged as d:
            outcome.state, outcome.reason = "diverged", f"epoch {d.epoch}: {d.reason}"
            return outcome
        outcome.epochs, outcome.value = epoch, report.value
        outcome.reports.append(report)
        if callback is not None and callback(report) is False:
            outcome.state, outcome.reason = "pruned", f"stopped by the callback after epoch {epoch}"
            return outcome
    return outcome


def _epoch(run, settings: Settings, epoch: int, start: float) -> EpochReport:
    t0 = time.perf_counter()
    train_loss = None
    if epoch > 0:
        train_loss = run.train_epoch()
        _finite(train_loss, epoch, "training loss")
    value = run.validate()
    _finite(value, epoch, "validation loss")
    train_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    spectrum = probe_error = None
    due = epoch % settings.spectrum_every == 0 or epoch == settings.epochs
    if due and (epoch > 0 or settings.spectrum_initial):
        try:
            spectrum = spectrum_of(run, settings)
        except ProbeOverflow as e:
            probe_error = str(e)
    return EpochReport(epoch, value, train_loss, spectrum, train_seconds,
                       time.perf_counter() - t0, time.perf_counter() - start, probe_error)


class ProbeOverflow(ArithmeticError):
    """The spectrum probe left the floating-point range (state, Jacobian or exponents)."""


def spectrum_of(run, settings: Settings) -> np.ndarray:
    """The run's Lyapunov spectrum now, as settings say; ProbeOverflow if it is not finite."""
    probe = run.spectrum_probe()
    dtype = SPECTRUM_DTYPES[settings.spectrum_dtype]
    cell = run.lyapunov_cell(settings.spectrum_state, dtype=dtype)
    k = settings.spectrum_k if settings.spectrum_k is None else min(settings.spectrum_k, cell.dim)
    try:
        res = aelle.lyapunov_spectrum(cell, probe.inputs, warmup=probe.warmup, k=k,
                                      t_on=settings.spectrum_t_on, h0=probe.h0, dtype=dtype)
    except SpectrumDivergedError as e:
        raise ProbeOverflow(f"{settings.spectrum_dtype} probe: {e}") from None
    spectrum = res.exponents.cpu().numpy()
    if not np.isfinite(spectrum).all():
        raise ProbeOverflow(f"{settings.spectrum_dtype} probe: non-finite exponents")
    return spectrum


def _finite(value: float, epoch: int, what: str) -> None:
    if not math.isfinite(value):
        raise Diverged(epoch, f"{what} is {value}")
