"""Optuna pruners that read a trial's Lyapunov spectrum.

``AeLLEPruner`` scores the spectrum of the step just reported with an AeLLE model trained on the
study's completed trials (spectra of every step, each labelled with its trial's final value: the
"pre-trained AeLLE across epochs" of Table 3.1) or with a model loaded from elsewhere, and prunes
when the predicted final value is worse than the study's ``quantile`` of completed values (or
when the region classifier says "bad"). ``LEThresholdPruner`` is the baseline: a threshold on
the max or mean exponent, fitted for best F1 on the same data.

Both share the guards, in order: a non-finite value or spectrum prunes at once (diverged); fewer
than ``n_startup_trials`` complete (counting ``reference_values``, the final values of a previous
study a given model was trained on), no spectrum at this step, or no model yet: the fallback
pruner decides; a trial chosen to explore (probability ``explore``, drawn once per trial from
``seed`` and its number) is never pruned by the model, so the model keeps seeing how trials it
would reject end. The cut is the ``quantile`` of the completed trials' final values and, by
default (``cut_from="all"``), of the predicted finals of the trials pruned so far: they stand in
for the values pruning keeps the study from seeing. Each decision is written to the trial's
user attributes (``aelle:*``). Refitting happens at most every ``retrain_every`` completions,
in a background thread for AeLLE: ``prune()`` itself only reads the current model.

With ``curve`` (a learning-curve pruner, e.g. Optuna's MedianPruner) the spectrum decides only
before ``curve_from`` (default: at epoch 0, the untrained network, where a loss curve knows
nothing) and the curve pruner from then on; a trial it stops stands in the cut by the model's
prediction (its current value while there is no model). On the recorded SMNIST population
(bench/pruning_replay.py) this spends fewer epochs than the median pruner alone and keeps the
best network.
"""

from __future__ import annotations

import math
import threading
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.pruners import BasePruner, NopPruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from aelle.classifiers import Threshold, le_statistics
from aelle.model import AeLLE, AeLLEConfig
from aelle.store import SpectrumStore, TrialAttrStore

ATTR = "aelle:"
_log = optuna.logging.get_logger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """Spectra of completed trials, each labelled with its trial's final value."""

    spectra: list[np.ndarray]
    finals: np.ndarray          # (n,) the final value of the trial each spectrum came from
    trials: int                 # completed trials these came from


def training_data(study: optuna.Study, trials: list[FrozenTrial],
                  store: SpectrumStore) -> TrainingData:
    """Every finite spectrum of the completed ``trials`` with a finite value."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
            and math.isfinite(t.value)]
    found = store.spectra(study, done)
    spectra, finals = [], []
    for t in done:
        for z in found.get(t.number, {}).values():
            if np.isfinite(z).all():
                spectra.append(z)
                finals.append(t.value)
    return TrainingData(spectra, np.asarray(finals, dtype=np.float64), len(done))


def _cut(values: np.ndarray, quantile: float, direction: StudyDirection) -> float:
    """The value a trial must beat: the ``quantile`` best fraction of ``values`` lies on its
    better side."""
    q = quantile if direction == StudyDirection.MINIMIZE else 1.0 - quantile
    return float(np.quantile(values, q))


def _worse(value: float, cut: float, direction: StudyDirection) -> bool:
    return value > cut if direction == StudyDirection.MINIMIZE else value < cut


def _better(values: np.ndarray, cut: float, direction: StudyDirection) -> np.ndarray:
    return values < cut if direction == StudyDirection.MINIMIZE else values > cut


def _completed(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _finite_values(trials: list[FrozenTrial]) -> np.ndarray:
    return np.array([t.value for t in trials if t.value is not None and math.isfinite(t.value)],
                    dtype=np.float64)


def write_attrs(study: optuna.Study, trial: FrozenTrial, attrs: dict) -> None:
    """The default recorder: each field as the trial's user attribute ``aelle:<field>``."""
    storage = study._storage  # a FrozenTrial has no setter; Optuna's storage API does
    for key, val in attrs.items():
        storage.set_trial_user_attr(trial._trial_id, ATTR + key, val)


class _Scorer:
    """What a fitted spectrum pruner holds: a decision for one spectrum."""

    version: str
    needs_cut = True  # compares with the study's quantile of completed values

    def decide(self, spectrum: np.ndarray, cut: float | None) -> tuple[bool, float | None]:
        """(prune?, predicted final value or None)."""
        raise NotImplementedError

    def predict(self, spectrum: np.ndarray) -> float | None:
        """The predicted final value, if this scorer predicts one."""
        return None


class SpectrumPruner(BasePruner):
    """The guards and bookkeeping shared by the spectrum pruners (see the module docstring)."""

    def __init__(self, *, n_startup_trials: int = 10, quantile: float = 0.5,
                 fallback: BasePruner | None = None, explore: float = 0.1,
                 seed: int | None = None, retrain_every: int = 5,
                 store: SpectrumStore | None = None,
                 on_fit: Callable[[SpectrumPruner], None] | None = None,
                 recorder: Callable[[optuna.Study, FrozenTrial, dict], None] | None = None,
                 completed: Callable[[optuna.Study], list[FrozenTrial]] | None = None,
                 reference_values=None, cut_from: str = "all",
                 curve: BasePruner | None = None, curve_from: int = 1):
        if isinstance(n_startup_trials, bool) or not isinstance(n_startup_trials, int) \
                or n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be a non-negative integer, got "
                             f"{n_startup_trials!r}")
        if not (isinstance(quantile, int | float) and 0.0 < quantile < 1.0):
            raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
        if fallback is not None and not isinstance(fallback, BasePruner):
            raise ValueError(f"fallback must be an optuna pruner, got {type(fallback).__name__}")
        if curve is not None and not isinstance(curve, BasePruner):
            raise ValueError(f"curve must be an optuna pruner, got {type(curve).__name__}")
        if isinstance(curve_from, bool) or not isinstance(curve_from, int) or curve_from < 1:
            raise ValueError(f"curve_from must be a positive integer, got {curve_from!r}")
        if not (isinstance(explore, int | float) and 0.0 <= explore <= 1.0):
            raise ValueError(f"explore must be in [0, 1], got {explore!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        if isinstance(retrain_every, bool) or not isinstance(retrain_every, int) \
                or retrain_every < 1:
            raise ValueError(f"retrain_every must be a positive integer, got {retrain_every!r}")
        if store is not None and not isinstance(store, SpectrumStore):
            raise ValueError(f"store must be a SpectrumStore, got {type(store).__name__}")
        if on_fit is not None and not callable(on_fit):
            raise ValueError("on_fit must be callable")
        if recorder is not None and not callable(recorder):
            raise ValueError("recorder must be callable")
        self.on_fit = on_fit
        reference = np.asarray([] if reference_values is None else reference_values,
                               dtype=np.float64).ravel()
        if not np.isfinite(reference).all():
            raise ValueError("reference_values must be finite numbers")
        # final values of a previous study of the same task: with a model trained there, they
        # set the cut before this study has completed anything (pruning from its first trial)
        self.reference_values = reference
        if cut_from not in ("all", "completed"):
            raise ValueError(f"cut_from must be 'all' or 'completed', got {cut_from!r}")
        # "completed" compares with the finals of the trials that survived, which pruning
        # biases: as bad trials stop, the survivors' median falls and good trials get cut.
        # "all" adds, for every trial pruned on a prediction, that prediction as its stand-in.
        self.cut_from = cut_from
        self._stopped: dict[int, float] = {}  # trial id -> predicted final when pruned
        if completed is not None and not callable(completed):
            raise ValueError("completed must be callable")
        self.recorder = recorder or write_attrs
        # where the completed trials come from: the study by default; a coordinator that
        # knows when trials complete passes its cache (reading every trial per report is slow)
        self.completed_trials = completed or _completed
        self.n_startup_trials = n_startup_trials
        self.quantile = float(quantile)
        self.fallback = fallback or NopPruner()
        # the spectrum decides where the learning curve knows nothing yet (the untrained
        # network, epoch 0); from ``curve_from`` on, a learning-curve pruner decides
        self.curve, self.curve_from = curve, curve_from
        self.explore = float(explore)
        self.seed = np.random.SeedSequence().entropy if seed is None else seed
        self.retrain_every = retrain_every
        self.store = store or TrialAttrStore()
        self._scorer: _Scorer | None = None
        self._fitted_on = -1          # completed trials the current scorer was fitted on
        self._lock = threading.Lock()

    # ---- the decision
    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        value = trial.intermediate_values[step]
        if not math.isfinite(value):
            return self._record(study, trial, step, True, "diverged",
                                f"value at step {step} is {value}")
        spectrum = self.store.spectrum(study, trial, step)
        if spectrum is not None and not np.isfinite(spectrum).all():
            return self._record(study, trial, step, True, "diverged",
                                f"spectrum at step {step} has non-finite exponents")
        if self.curve is not None and step >= self.curve_from:
            return self._by_curve(study, trial, step, value, spectrum)
        completed = self.completed_trials(study)
        values = np.concatenate([self.reference_values, _finite_values(completed)])
        if len(values) < self.n_startup_trials:
            return self._defer(study, trial, step, "startup")
        self._refresh(study, completed)
        scorer = self._scorer
        if scorer is None:
            return self._defer(study, trial, step, "no model yet")
        if spectrum is None:
            return self._defer(study, trial, step, f"no spectrum at step {step}")
        if self.cut_from == "all":
            values = np.concatenate([values, self._stand_ins(completed)])
        cut = _cut(values, self.quantile, study.direction) if len(values) else None
        if cut is None and scorer.needs_cut:
            return self._defer(study, trial, step, "no completed trial to compare with")
        prune, predicted = scorer.decide(spectrum, cut)
        attrs = {"model": scorer.version} if cut is None else {"model": scorer.version,
                                                                "cut": cut}
        if predicted is not None:
            attrs["prediction"] = predicted
        if prune and self._explores(trial):
            return self._record(study, trial, step, False, "explore",
                                "would prune; kept to calibrate the model", **attrs)
        if prune and predicted is not None and math.isfinite(predicted):
            self.remember_stopped(trial._trial_id, predicted)
        return self._record(study, trial, step, prune, "prune" if prune else "continue",
                            None, **attrs)

    def _by_curve(self, study, trial, step, value: float, spectrum) -> bool:
        """The learning-curve pruner decides; the model's prediction is kept as information,
        and a trial the curve stops stands in the cut by it (by its current value while
        there is no model: the survivors alone would put the cut too low)."""
        prune = self.curve.prune(study, trial)
        scorer = self._scorer
        predicted = scorer.predict(spectrum) if scorer is not None and spectrum is not None \
            else None
        attrs = {} if predicted is None else {"model": scorer.version, "prediction": predicted}
        if prune:
            stand_in = predicted if predicted is not None and math.isfinite(predicted) else value
            self.remember_stopped(trial._trial_id, stand_in)
        return self._record(study, trial, step, prune, "curve",
                            f"{type(self.curve).__name__} {'prunes' if prune else 'continues'}",
                            **attrs)

    def remember_stopped(self, trial_id: int, predicted: float) -> None:
        """Count a trial pruned on ``predicted`` in the cut (``cut_from="all"``): the pruner
        remembers its own decisions; a restarted coordinator tells it the earlier ones."""
        with self._lock:
            self._stopped[trial_id] = float(predicted)

    def _stand_ins(self, completed: list[FrozenTrial]) -> np.ndarray:
        done = {t._trial_id for t in completed}  # a trial told to stop may still complete
        with self._lock:
            return np.array([v for tid, v in self._stopped.items() if tid not in done],
                            dtype=np.float64)

    def _defer(self, study, trial, step, why: str) -> bool:
        prune = self.fallback.prune(study, trial)
        return self._record(study, trial, step, prune, "fallback",
                            f"{why}: fallback {type(self.fallback).__name__}")

    def _explores(self, trial: FrozenTrial) -> bool:
        if trial.user_attrs.get(f"{ATTR}explore"):
            return True
        return bool(np.random.default_rng([self.seed, trial.number]).random() < self.explore)

    def _record(self, study, trial, step, prune: bool, decision: str, reason: str | None,
                **extra) -> bool:
        attrs = {"decision": decision, "step": step, **extra}
        if decision == "explore":
            attrs["explore"] = True
        if reason is not None:
            attrs["reason"] = reason
        self.recorder(study, trial, attrs)
        return prune

    # ---- fitting
    @property
    def fitted_on(self) -> int:
        """How many completed trials the current scorer was fitted on (-1: none yet)."""
        return self._fitted_on

    def refresh(self, study: optuna.Study) -> None:
        """Refit now if enough trials completed since the last fit (in the background for
        AeLLE): call it when a trial completes, so the next report meets a fresh model."""
        self._refresh(study, self.completed_trials(study))

    def _due(self, n_completed: int) -> bool:
        return self._scorer is None or n_completed - self._fitted_on >= self.retrain_every

    def _refresh(self, study: optuna.Study, completed: list[FrozenTrial]) -> None:
        if self._due(len(completed)):
            self.refit(study, completed)

    def refit(self, study: optuna.Study, completed: list[FrozenTrial] | None = None) -> None:
        """Fit the scorer on the study's completed trials now (in this thread)."""
        if completed is None:
            completed = self.completed_trials(study)
        data = training_data(study, completed, self.store)
        if len(data.spectra) < 4 or data.trials < 2:  # too few to fit anything: keep deferring
            return
        values = _finite_values(completed)
        good = _better(data.finals, _cut(values, self.quantile, study.direction),
                       study.direction)
        try:
            scorer = self._fit(data, good, study.direction)
        except (ValueError, RuntimeError) as e:  # keep the previous scorer; say why
            _log.warning(f"spectrum pruner: refit on {data.trials} trials failed: {e}")
            return
        with self._lock:
            self._scorer, self._fitted_on = scorer, len(completed)
        if self.on_fit is not None:
            try:
                self.on_fit(self)
            except Exception as e:  # persisting the model must not break the fit itself
                _log.warning(f"spectrum pruner: on_fit callback failed: {e!r}")

    @abstractmethod
    def _fit(self, data: TrainingData, good: np.ndarray, direction: StudyDirection) -> _Scorer:
        """A scorer fitted on completed trials' spectra (good: final value beats the cut)."""


class _AeLLEScorer(_Scorer):
    def __init__(self, model: AeLLE, region: str | None, direction: StudyDirection):
        self.model, self.region, self.direction = model, region, direction
        self.version = model.version
        self.needs_cut = region is None

    def predict(self, spectrum):
        return float(self.model.predict([spectrum])[0])

    def decide(self, spectrum, cut):
        predicted = self.predict(spectrum)
        if self.region is not None:
            return not bool(self.model.classify([spectrum], self.region)[0]), predicted
        return _worse(predicted, cut, self.direction), predicted


class AeLLEPruner(SpectrumPruner):
    """Prune on the final value an AeLLE model predicts from the current spectrum.

    model: a fitted :class:`AeLLE` to use (bytes from ``AeLLE.to_bytes`` work too); it is then
    not retrained unless ``retrain`` is True. region: None compares the prediction with the
    study's ``quantile``; a classifier name ("pc1", "pc1_f1", "orthant<d>") prunes on the region
    instead. config: the AeLLE settings for models fitted here. reference_values: the final
    values of the study ``model`` was trained on (pre-trained on a previous study: the cut and
    the startup count use them until this study has its own). background: fit in a thread
    (True) so that ``prune()`` never waits, or inside the call that found a refit due (False:
    deterministic, for tests and scripts).
    """

    def __init__(self, *, n_startup_trials: int = 10, quantile: float = 0.5,
                 fallback: BasePruner | None = None, explore: float = 0.1,
                 seed: int | None = None, retrain_every: int = 5,
                 store: SpectrumStore | None = None,
                 on_fit: Callable[[SpectrumPruner], None] | None = None,
                 recorder: Callable[[optuna.Study, FrozenTrial, dict], None] | None = None,
                 completed: Callable[[optuna.Study], list[FrozenTrial]] | None = None,
                 model: AeLLE | bytes | None = None,
                 retrain: bool | None = None, region: str | None = None,
                 config: AeLLEConfig | None = None, background: bool = True,
                 reference_values=None, cut_from: str = "all",
                 curve: BasePruner | None = None, curve_from: int = 1):
        super().__init__(n_startup_trials=n_startup_trials, quantile=quantile,
                         fallback=fallback, explore=explore, seed=seed,
                         retrain_every=retrain_every, store=store, on_fit=on_fit,
                         recorder=recorder, completed=completed,
                         reference_values=reference_values, cut_from=cut_from,
                         curve=curve, curve_from=curve_from)
        if isinstance(model, bytes | bytearray):
            model = AeLLE.from_bytes(model)
        if model is not None and not (isinstance(model, AeLLE) and model.fitted):
            raise ValueError("model must be a fitted AeLLE (or its bytes)")
        if region is not None and not (region in ("pc1", "pc1_f1") or (
                region.startswith("orthant") and region[7:].isdigit())):
            raise ValueError(f"region must be None, 'pc1', 'pc1_f1' or 'orthant<d>', "
                             f"got {region!r}")
        if model is not None and region is not None and region not in model.classifiers:
            raise ValueError(f"the given model has no {region!r} classifier; it has "
                             f"{sorted(model.classifiers)}")
        if config is not None and not isinstance(config, AeLLEConfig):
            raise ValueError(f"config must be an AeLLEConfig, got {type(config).__name__}")
        self.retrain = model is None if retrain is None else bool(retrain)
        self.region, self.config, self.background = region, config or AeLLEConfig(), background
        self._given = model
        self._thread: threading.Thread | None = None

    @property
    def model(self) -> AeLLE | None:
        """The AeLLE model deciding now (None before the first fit)."""
        scorer = self._scorer
        return scorer.model if isinstance(scorer, _AeLLEScorer) else self._given

    def prune(self, study, trial):
        if self._scorer is None and self._given is not None:
            self._scorer = _AeLLEScorer(self._given, self.region, study.direction)
            self._fitted_on = 0
        return super().prune(study, trial)

    def _due(self, n_completed: int) -> bool:
        return (self.retrain or self._scorer is None) and super()._due(n_completed)

    def _refresh(self, study, completed):
        if not self._due(len(completed)):
            return
        if not self.background:
            self.refit(study, completed)
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._refit_until_current,
                                            args=(study, list(completed)),
                                            name="aelle-refit", daemon=True)
            self._thread.start()

    def _refit_until_current(self, study, completed):
        """Refit; then again while trials completed during the fit make another one due (a
        completion that arrives while a fit runs starts none itself)."""
        while True:
            self.refit(study, completed)
            latest = self.completed_trials(study)
            if len(latest) <= len(completed) or not self._due(len(latest)):
                return
            completed = latest

    @property
    def fitting(self) -> bool:
        """A background refit is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background refit, if one runs, has finished."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _fit(self, data, good, direction):
        model = AeLLE(self.config).fit(data.spectra, data.finals)
        if self.region is not None:
            model.calibrate(data.spectra, good)
        return _AeLLEScorer(model, self.region, direction)


class _ThresholdScorer(_Scorer):
    def __init__(self, statistic: str, rule: Threshold):
        self.statistic, self.rule = statistic, rule
        self.needs_cut = False
        self.version = f"{statistic} {'<' if rule.below else '>'} {rule.threshold:.6g}"

    def decide(self, spectrum, cut):
        value = le_statistics([spectrum])[self.statistic]
        return not bool(self.rule.predict(value)[0]), None


class LEThresholdPruner(SpectrumPruner):
    """Baseline: prune when the max (or mean) Lyapunov exponent is on the wrong side of a
    threshold, fitted for best F1 of "final value beats the cut" on the completed trials'
    spectra, or fixed: ``threshold`` with ``below`` (good when the statistic is below it)."""

    def __init__(self, statistic: str = "max_le", *, threshold: float | None = None,
                 below: bool = True, n_startup_trials: int = 10, quantile: float = 0.5,
                 fallback: BasePruner | None = None, explore: float = 0.1,
                 seed: int | None = None, retrain_every: int = 5,
                 store: SpectrumStore | None = None,
                 on_fit: Callable[[SpectrumPruner], None] | None = None,
                 recorder: Callable[[optuna.Study, FrozenTrial, dict], None] | None = None,
                 completed: Callable[[optuna.Study], list[FrozenTrial]] | None = None,
                 curve: BasePruner | None = None, curve_from: int = 1):
        super().__init__(n_startup_trials=n_startup_trials, quantile=quantile,
                         fallback=fallback, explore=explore, seed=seed,
                         retrain_every=retrain_every, store=store, on_fit=on_fit,
                         recorder=recorder, completed=completed,
                         curve=curve, curve_from=curve_from)
        if statistic not in ("max_le", "mean_le"):
            raise ValueError(f"statistic must be 'max_le' or 'mean_le', got {statistic!r}")
        if threshold is not None and not (isinstance(threshold, int | float)
                                          and math.isfinite(threshold)):
            raise ValueError(f"threshold must be a finite number or None, got {threshold!r}")
        self.statistic = statistic
        if threshold is not None:
            self._scorer = _ThresholdScorer(statistic, Threshold(threshold, below))
            self._fixed = True
        else:
            self._fixed = False

    def _due(self, n_completed):
        return not self._fixed and super()._due(n_completed)

    def _fit(self, data, good, direction):
        stat = le_statistics(data.spectra)[self.statistic]
        if good.all() or not good.any():  # one class only: nothing to separate yet
            return _ThresholdScorer(self.statistic, Threshold(np.inf, below=True))
        return _ThresholdScorer(self.statistic, Threshold.best_f1(stat, good))


class ShadowPruner(BasePruner):
    """Let every trial run, but record what ``pruner`` would have decided (user attribute
    ``aelle:shadow_prune`` at each step): to evaluate a pruner honestly on a study it does not
    shape."""

    def __init__(self, pruner: BasePruner):
        if not isinstance(pruner, BasePruner):
            raise ValueError(f"pruner must be an optuna pruner, got {type(pruner).__name__}")
        self.pruner = pruner

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        would = bool(self.pruner.prune(study, trial))
        if trial.last_step is not None:
            study._storage.set_trial_user_attr(trial._trial_id, f"{ATTR}shadow_prune", would)
            first = trial.user_attrs.get(f"{ATTR}shadow_first_prune_step")
            if would and first is None:
                study._storage.set_trial_user_attr(trial._trial_id,
                                                   f"{ATTR}shadow_first_prune_step",
                                                   trial.last_step)
        return False
