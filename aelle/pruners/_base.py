"""The guards and the cut shared by the spectrum pruners.

``decide()`` is the whole decision, as a value; ``prune()`` is the plain-Optuna entry point:
it reads the spectrum and the completed trials, refits when due, decides, records the decision
through the hooks and returns ``decision.prune``. The coordinator calls ``refresh()`` and
``decide()`` itself, with the spectrum it was just sent.

The guards, in order: a non-finite value or spectrum prunes at once (diverged); fewer than
``n_startup_trials`` completed (counting ``reference_values``, the final values of the study a
carried model was trained on), no model yet, no spectrum at this step, or nothing to compare
with: the fallback pruner decides. A trial drawn to explore (probability ``explore``, drawn once
per trial from ``seed`` and its number) is never pruned by the model, so that the model keeps
seeing how trials it would reject end. The cut is the ``quantile`` of the completed trials'
final values and, with ``cut_from="all"``, of the predicted finals of the trials pruned so far:
they stand in for the values pruning keeps the study from seeing.
"""

from __future__ import annotations

import math
import threading
from abc import abstractmethod
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.pruners import BasePruner, NopPruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from aelle.pruners._decision import Decision, Kind, better, cut_of, finite_values
from aelle.pruners._hooks import EXPLORE, PrunerHooks
from aelle.pruners._refit import Refitter, completed_trials
from aelle.pruners._store import SpectrumStore
from aelle.validate import check_choice, check_int, check_number, check_type


@dataclass(frozen=True)
class TrainingData:
    """Spectra of completed trials, each labelled with its trial's final value."""

    spectra: list[np.ndarray]
    finals: np.ndarray          # (n,) the final value of the trial each spectrum came from
    trials: int                 # completed trials these came from


def training_data(study: optuna.Study, trials: list[FrozenTrial],
                  store: SpectrumStore) -> TrainingData:
    """Every finite spectrum of the completed ``trials`` with a finite value."""
    done = [t for t in trials if t.value is not None and math.isfinite(t.value)]
    found = store.spectra(study, done)
    spectra, finals = [], []
    for t in done:
        for z in found.get(t.number, {}).values():
            if np.isfinite(z).all():
                spectra.append(z)
                finals.append(t.value)
    return TrainingData(spectra, np.asarray(finals, dtype=np.float64), len(done))


class Scorer:
    """What a fitted spectrum pruner holds: a verdict on one spectrum."""

    version: str
    needs_cut = True  # compares a prediction with the study's quantile of completed values

    def decide(self, spectrum: np.ndarray, cut: float | None,
               direction: StudyDirection) -> tuple[bool, float | None]:
        """(prune?, predicted final value or None)."""
        raise NotImplementedError

    def predict(self, spectrum: np.ndarray) -> float | None:
        """The predicted final value, if this scorer predicts one."""
        return None


class DecidingPruner(BasePruner):
    """A pruner whose decision is a value: ``decide()`` returns it, ``prune()`` (Optuna's
    entry point) reads what ``decide()`` needs, records the decision and returns its verdict.
    """

    hooks: PrunerHooks

    @abstractmethod
    def decide(self, study: optuna.Study, trial: FrozenTrial, *, spectrum: np.ndarray | None,
               completed: list[FrozenTrial]) -> Decision:
        """The decision about the trial's last reported step."""

    def refresh(self, study: optuna.Study, completed: list[FrozenTrial] | None = None) -> None:
        """Refit what is due (nothing, for a pruner that fits nothing)."""

    @property
    def spectrum_pruner(self) -> SpectrumPruner | None:
        """The spectrum pruner inside (itself, or the one a wrapper holds), if any."""
        return None

    @property
    def reads_initial_spectrum(self) -> bool:
        """Whether it reads the untrained network's spectrum (step 0). One that does not spares
        a study the probe of every configuration it screens."""
        return True

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if trial.last_step is None:
            return False
        completed = completed_trials(study)
        self.refresh(study, completed)
        spectrum = self.hooks.store.spectrum(study, trial, trial.last_step)
        decision = self.decide(study, trial, spectrum=spectrum, completed=completed)
        self.hooks.record(study, trial, decision)
        return decision.prune


class SpectrumPruner(DecidingPruner):
    """See the module docstring. ``retrain_every``: refit after this many more completed
    trials; ``background``: refit in a thread (``prune()`` never waits) or in the call that
    found a refit due (deterministic); ``hooks``: where spectra come from and decisions go
    (the trial's user attributes by default)."""

    def __init__(self, *, n_startup_trials: int = 10, quantile: float = 0.5,
                 fallback: BasePruner | None = None, explore: float = 0.1,
                 seed: int | None = None, retrain_every: int = 5, background: bool = False,
                 reference_values=None, cut_from: str = "all",
                 hooks: PrunerHooks | None = None):
        self._n_startup_trials = check_int("n_startup_trials", n_startup_trials, low=0)
        self._quantile = check_number("quantile", quantile, low=0.0, high=1.0, low_open=True,
                                      high_open=True)
        self._fallback = check_type("fallback", fallback, BasePruner, optional=True) \
            or NopPruner()
        self._explore = check_number("explore", explore, low=0.0, high=1.0)
        check_int("seed", seed, low=0, optional=True)
        self._seed = np.random.SeedSequence().entropy if seed is None else seed
        check_int("retrain_every", retrain_every, low=1)
        reference = np.asarray([] if reference_values is None else reference_values,
                               dtype=np.float64).ravel()
        if not np.isfinite(reference).all():
            raise ValueError("reference_values must be finite numbers")
        self._reference = reference
        # "completed" compares with the finals of the trials that survived, which pruning
        # biases: as bad trials stop, the survivors' median falls and good trials get cut.
        # "all" adds, for every trial pruned on a prediction, that prediction as its stand-in.
        self._cut_from = check_choice("cut_from", cut_from, ("all", "completed"))
        self.hooks = check_type("hooks", hooks, PrunerHooks, optional=True) or PrunerHooks()
        self._stopped: dict[int, float] = {}  # trial id -> predicted final when pruned
        self._lock = threading.Lock()
        self._refitter: Refitter[Scorer] = Refitter(
            self._fit_scorer, every=retrain_every, background=bool(background),
            on_fit=lambda: self.hooks.on_fit(self))

    # ---- what the coordinator and the wrappers use
    @property
    def spectrum_pruner(self) -> SpectrumPruner:
        return self

    @property
    def model_version(self) -> str | None:
        """The version of the model or rule deciding now (None before the first fit)."""
        scorer = self._refitter.scorer
        return None if scorer is None else scorer.version

    @property
    def fitted_on(self) -> int:
        """How many completed trials the current scorer was fitted on (-1: none yet)."""
        return self._refitter.fitted_on

    @property
    def fitting(self) -> bool:
        return self._refitter.fitting

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background refit, if one runs, has finished."""
        self._refitter.wait(timeout)

    def refresh(self, study: optuna.Study, completed: list[FrozenTrial] | None = None) -> None:
        """Refit now if enough trials completed since the last fit (in the background if so
        configured): call it when a trial completes, so the next report meets a fresh model."""
        self._refitter.refresh(study, completed_trials(study) if completed is None
                               else completed)

    def refit(self, study: optuna.Study, completed: list[FrozenTrial] | None = None) -> None:
        """Fit the scorer on the study's completed trials now, in this thread."""
        self._refitter.refit(study, completed_trials(study) if completed is None else completed)

    def remember_stopped(self, trial_id: int, predicted: float) -> None:
        """Count a trial pruned on ``predicted`` in the cut (``cut_from="all"``): the pruner
        remembers its own decisions; a wrapper that prunes, or a restarted coordinator,
        tells it the others."""
        with self._lock:
            self._stopped[trial_id] = float(predicted)

    def predict(self, spectrum: np.ndarray | None) -> tuple[float | None, str | None]:
        """(the predicted final value or None, the model's version or None)."""
        scorer = self._refitter.scorer
        if scorer is None or spectrum is None:
            return None, None
        return scorer.predict(spectrum), scorer.version

    # ---- the decision
    def decide(self, study: optuna.Study, trial: FrozenTrial, *, spectrum: np.ndarray | None,
               completed: list[FrozenTrial]) -> Decision:
        """The decision about the trial's last reported step, given its spectrum there and the
        study's completed trials. It writes nothing to the study (the fallback pruner it may
        consult aside); it does remember a trial it prunes on a prediction, for later cuts."""
        step = trial.last_step
        if step is None:
            return Decision(False, Kind.CONTINUE, None, "nothing reported yet")
        diverged = diverged_decision(trial, spectrum)
        if diverged is not None:
            return diverged
        values = np.concatenate([self._reference, finite_values(completed)])
        if len(values) < self._n_startup_trials:
            return self._defer(study, trial, "startup")
        scorer = self._refitter.scorer
        if scorer is None:
            return self._defer(study, trial, "no model yet")
        if spectrum is None:
            return self._defer(study, trial, f"no spectrum at step {step}")
        if self._cut_from == "all":
            values = np.concatenate([values, self._stand_ins(completed)])
        cut = cut_of(values, self._quantile, study.direction) if len(values) else None
        if cut is None and scorer.needs_cut:
            return self._defer(study, trial, "no completed trial to compare with")
        prune, predicted = scorer.decide(spectrum, cut, study.direction)
        facts = {"prediction": predicted, "model": scorer.version, "cut": cut}
        if prune and self._explores(trial):
            return Decision(False, Kind.EXPLORE, step, "would prune; kept to calibrate the "
                            "model", explore=True, **facts)
        if prune and predicted is not None and math.isfinite(predicted):
            self.remember_stopped(trial._trial_id, predicted)
        return Decision(prune, Kind.PRUNE if prune else Kind.CONTINUE, step, **facts)

    def _stand_ins(self, completed: list[FrozenTrial]) -> np.ndarray:
        done = {t._trial_id for t in completed}  # a trial told to stop may still complete
        with self._lock:
            return np.array([v for tid, v in self._stopped.items() if tid not in done],
                            dtype=np.float64)

    def _defer(self, study: optuna.Study, trial: FrozenTrial, why: str) -> Decision:
        prune = self._fallback.prune(study, trial)
        return Decision(prune, Kind.FALLBACK, trial.last_step,
                        f"{why}: fallback {type(self._fallback).__name__}")

    def _explores(self, trial: FrozenTrial) -> bool:
        if trial.user_attrs.get(EXPLORE):
            return True
        return bool(np.random.default_rng([self._seed, trial.number]).random() < self._explore)

    # ---- fitting
    def _fit_scorer(self, study: optuna.Study, completed: list[FrozenTrial]) -> Scorer | None:
        data = training_data(study, completed, self.hooks.store)
        if len(data.spectra) < 4 or data.trials < 2:  # too few to fit anything: keep deferring
            return None
        good = better(data.finals, cut_of(finite_values(completed), self._quantile,
                                          study.direction), study.direction)
        return self._fit(data, good, study.direction)

    @abstractmethod
    def _fit(self, data: TrainingData, good: np.ndarray, direction: StudyDirection) -> Scorer:
        """A scorer fitted on completed trials' spectra (good: final value beats the cut)."""


def diverged_decision(trial: FrozenTrial, spectrum: np.ndarray | None) -> Decision | None:
    """A trial whose last value or spectrum is not finite is pruned at once, in any phase."""
    step = trial.last_step
    value = trial.intermediate_values[step]
    if not math.isfinite(value):
        return Decision(True, Kind.DIVERGED, step, f"value at step {step} is {value}")
    if spectrum is not None and not np.isfinite(spectrum).all():
        return Decision(True, Kind.DIVERGED, step,
                        f"spectrum at step {step} has non-finite exponents")
    return None
