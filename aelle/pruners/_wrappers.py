"""Pruners made of other pruners, by composition: an Optuna pruner's verdict as a decision,
the spectrum until a step and a learning-curve pruner after it, and shadow mode."""

from __future__ import annotations

import dataclasses
import math

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial

from aelle.pruners._base import DecidingPruner, SpectrumPruner, diverged_decision
from aelle.pruners._decision import Decision, Kind
from aelle.pruners._hooks import PrunerHooks
from aelle.validate import check_int, check_type


def _verdict(pruner: BasePruner, study: optuna.Study, trial: FrozenTrial) -> Decision:
    prune = bool(pruner.prune(study, trial))
    name = type(pruner).__name__
    # a pruner that predicts and says why (JointPruner)
    predicted = getattr(pruner, "prediction", None)
    if prune:
        reason = getattr(pruner, "reason", None)
        if reason:
            return Decision(True, Kind.PRUNE, trial.last_step, f"{name}: {reason}",
                            prediction=predicted)
        return Decision(True, Kind.CURVE, trial.last_step, f"{name} prunes",
                        prediction=predicted)
    return Decision(False, Kind.CONTINUE, trial.last_step, prediction=predicted)


class PlainPruner(DecidingPruner):
    """Any Optuna pruner (median, Hyperband, ...), its verdict given as a decision: so that the
    coordinator treats every pruner alike."""

    def __init__(self, pruner: BasePruner, hooks: PrunerHooks | None = None):
        self._pruner = check_type("pruner", pruner, BasePruner)
        self.hooks = hooks or PrunerHooks()

    @property
    def wrapped(self) -> BasePruner:
        return self._pruner

    @property
    def reads_initial_spectrum(self) -> bool:
        # Optuna's pruners read values only; one of ours that reads spectra says so
        return bool(getattr(self._pruner, "reads_initial_spectrum", False))

    def decide(self, study, trial, *, spectrum, completed):
        return _verdict(self._pruner, study, trial)


def deciding(pruner: BasePruner, hooks: PrunerHooks | None = None) -> DecidingPruner:
    """``pruner`` itself if it decides by value, else wrapped in a :class:`PlainPruner`."""
    return pruner if isinstance(pruner, DecidingPruner) else PlainPruner(pruner, hooks)


class _Wrapper(DecidingPruner):
    """A deciding pruner around another: hooks, refits and the spectrum pruner are its."""

    _pruner: DecidingPruner

    @property
    def hooks(self) -> PrunerHooks:
        return self._pruner.hooks

    @property
    def spectrum_pruner(self) -> SpectrumPruner | None:
        return self._pruner.spectrum_pruner

    @property
    def reads_initial_spectrum(self) -> bool:
        return self._pruner.reads_initial_spectrum

    def refresh(self, study, completed=None):
        self._pruner.refresh(study, completed)


class ByStep(_Wrapper):
    """The spectrum pruner decides before ``from_step`` (by default only at step 0, the
    untrained network, where a loss curve knows nothing); the learning-curve pruner ``then``
    from there on. The spectrum model's prediction is kept as information, and a trial the
    curve stops stands in the spectrum pruner's cut by it (by its current value while there is
    no model: the survivors alone would put the cut too low). Divergence prunes at any step.
    """

    def __init__(self, pruner: SpectrumPruner, then: BasePruner, from_step: int = 1):
        self._pruner = check_type("pruner", pruner, SpectrumPruner)
        if isinstance(then, DecidingPruner):
            raise ValueError("then must be a learning-curve pruner, not a spectrum pruner")
        self._then = check_type("then", then, BasePruner)
        self._from_step = check_int("from_step", from_step, low=1)

    def decide(self, study, trial, *, spectrum, completed):
        step = trial.last_step
        if step is None or step < self._from_step:
            return self._pruner.decide(study, trial, spectrum=spectrum, completed=completed)
        diverged = diverged_decision(trial, spectrum)
        if diverged is not None:
            return diverged
        decision = _verdict(self._then, study, trial)
        predicted, version = self._pruner.predict(spectrum)
        if decision.prune:
            value = trial.intermediate_values[step]
            stand_in = predicted if predicted is not None and math.isfinite(predicted) \
                else value
            self._pruner.remember_stopped(trial._trial_id, stand_in)
        verb = "prunes" if decision.prune else "continues"
        return Decision(decision.prune, Kind.CURVE, step,
                        f"{type(self._then).__name__} {verb}", prediction=predicted,
                        model=version)


class ShadowPruner(_Wrapper):
    """Let every trial run, but record what ``pruner`` would have decided (``shadow`` on the
    decision; the trial's user attributes ``aelle:shadow_prune`` at each step and
    ``aelle:shadow_first_prune_step``): to evaluate a pruner honestly on a study it does not
    shape."""

    def __init__(self, pruner: BasePruner):
        if not isinstance(pruner, BasePruner):
            raise ValueError(f"pruner must be an optuna pruner, but got "
                             f"{type(pruner).__name__}")
        self._pruner = deciding(pruner)

    @property
    def wrapped(self) -> DecidingPruner:
        return self._pruner

    def decide(self, study, trial, *, spectrum, completed):
        would = self._pruner.decide(study, trial, spectrum=spectrum, completed=completed)
        return dataclasses.replace(would, prune=False, shadow=would.prune)
