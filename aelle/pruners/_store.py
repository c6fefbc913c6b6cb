"""Where a trial's per-step Lyapunov spectra live, as the pruners read them.

Two kinds of store share one small interface: the trial's own user attributes (plain Optuna
scripts: :func:`report_spectrum` writes them) and the coordinator's spectra table (the service).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from aelle.pruners._hooks import SPECTRUM_PREFIX as PREFIX


class SpectrumStore(ABC):
    @abstractmethod
    def spectrum(self, study: optuna.Study, trial: FrozenTrial, step: int) -> np.ndarray | None:
        """The spectrum reported at ``step``, or None."""

    @abstractmethod
    def spectra(self, study: optuna.Study, trials: list[FrozenTrial]
                ) -> dict[int, dict[int, np.ndarray]]:
        """trial number -> step -> spectrum, for every spectrum those trials reported."""


class TrialAttrStore(SpectrumStore):
    """Spectra kept in the trial's user attributes, one per step (``aelle:spectrum:<step>``)."""

    def spectrum(self, study, trial, step):
        raw = trial.user_attrs.get(f"{PREFIX}{step}")
        return None if raw is None else np.asarray(raw, dtype=np.float64)

    def spectra(self, study, trials):
        out: dict[int, dict[int, np.ndarray]] = {}
        for t in trials:
            steps = {int(k[len(PREFIX):]): np.asarray(v, dtype=np.float64)
                     for k, v in t.user_attrs.items() if k.startswith(PREFIX)}
            if steps:
                out[t.number] = steps
        return out


def report_spectrum(trial: optuna.Trial, spectrum, step: int) -> None:
    """Record a trial's Lyapunov spectrum at ``step`` for the pruner (call it with the same step
    as ``trial.report``, before ``trial.should_prune()``). Non-finite exponents are kept: the
    pruner prunes such a trial as diverged."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    z = np.asarray(spectrum.detach().cpu() if hasattr(spectrum, "detach") else spectrum,
                   dtype=np.float64)
    if z.ndim != 1 or z.size == 0:
        raise ValueError(f"spectrum must be a non-empty 1-D sequence, got shape {z.shape}")
    # JSON has no NaN/inf: store them as None, read back as NaN
    trial.set_user_attr(f"{PREFIX}{step}",
                        [float(x) if math.isfinite(x) else None for x in z.tolist()])
