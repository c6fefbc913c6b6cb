"""The joint pruner: a calibrated prediction of a trial's final value from everything it has shown
so far (its epoch-0 spectrum, its loss curve, the epoch and, where comparable, its
hyperparameters), that prunes only when it is confident.

- :func:`joint_features`: one fixed-width row per (trial, step): the spectrum interpolated to
  ``dim`` exponents (as AeLLE does) with a column saying whether it was finite, the log loss
  curve up to the step with its last value carried to the end, the best log loss so far, the
  step as a fraction of the epochs, and the hyperparameter vector.
- :class:`JointModel`: gradient-boosted trees on those rows (every step of every training
  network is a row, labelled with its log final, a network that never finished labelled with
  the cap), cross-fitted over ``folds`` disjoint groups of networks: the mean of the fold models
  predicts, and the out-of-fold residuals of each step give a split-conformal lower bound (the
  ``alpha`` quantile of the residuals at that step).
- :class:`JointPruner`: prunes a trial at a step when the lower bound of its predicted final is
  worse than the ``k``-th best estimate of the study (completed trials' finals and the latest
  point prediction of every other trial it has seen); at step 0 (``screen``) before any
  training epoch, where ``screen_top`` < 1 also prunes a trial whose step-0 prediction is not in
  that best share of the step-0 predictions so far, and ``screen_quantile`` one whose step-0
  prediction is worse than that quantile of the model's own out-of-fold step-0 predictions on
  the networks it was fitted on (a fixed cut, from the study's first trial on; with
  ``screen_records`` a trial also passes whose step-0 prediction beats every earlier one of
  the study, from the ``screen_warmup``-th on; with ``screen_adapt`` one in the best
  ``screen_quantile`` share of the study's own step-0 predictions, from the
  ``screen_adapt``-th on: a study whose configurations all predict worse than the reference
  networks' best still trains its own best). Without a quantile, ``screen_warmup`` prunes
  the study's first trials at step 0 whatever their prediction, so that the share is taken
  among that many screened configurations before any trains. ``learn``: "none" keeps the
  carried model as it is; "stack" refits, on the study's completed trials, an affine map from
  the carried prediction to the final and the residual quantiles; "finetune" goes on boosting:
  a few shallow trees fitted on the rows of the study's completed trials to what the carried
  model got wrong, added to its prediction (both from ``stack_from`` completed trials on,
  refitted as more complete).
  ``then``: a learning-curve pruner that decides from step 1 on instead (Optuna's NopPruner:
  a trial that passes the screen trains to the end), the joint model screening at step 0 only
  (its later predictions are still made, as the study's estimates).
- A planned screen (``finalists``: K): every configuration stops at step 0, and once the study
  has screened all it will, :func:`queue_finalists` queues the K best by their step-0
  prediction (:meth:`JointPruner.ranked`) to run again from the same seed; a finalist (a trial
  with :data:`RERUN`) is not screened. This is the screen of the replays' ``screen_top_k_hp``;
  it needs the number of configurations to screen in advance.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from aelle.model import interpolate
from aelle.pruners._hooks import RERUN, SEED
from aelle.pruners._store import SpectrumStore, TrialAttrStore
from aelle.validate import check_choice, check_int, check_number

LOG_FLOOR, LOG_CAP = -12.0, 30.0  # log-loss columns are clipped into this range
SPECTRUM_CLIP = 50.0              # exponents beyond +-this are clipped (saturated tails)


def log_loss(value) -> float:
    """log of a loss value, clipped; a non-finite or non-positive one counts as the cap."""
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        return LOG_CAP if not (math.isfinite(v) and v <= 0.0) else LOG_FLOOR
    return min(max(math.log(v), LOG_FLOOR), LOG_CAP)


def joint_features(spectrum, values, step: int, epochs: int, hp=None, *, dim: int = 16,
                   use_spectrum: bool = True, spectrum_k: int | None = None) -> np.ndarray:
    """See the module docstring. ``values``: the trial's values at steps 0..step;
    ``spectrum_k``: read only the leading exponents of a longer spectrum (those a model was
    fitted on)."""
    cols: list[float] = []
    if use_spectrum:
        z = None if spectrum is None else np.asarray(spectrum, dtype=np.float64)[:spectrum_k]
        ok = z is not None and z.size > 0 and bool(np.isfinite(z).all())
        cols += interpolate([np.clip(z, -SPECTRUM_CLIP, SPECTRUM_CLIP)], dim)[0].tolist() if ok \
            else [SPECTRUM_CLIP] * dim
        cols.append(float(ok))
    logs = [log_loss(v) for v in list(values)[: step + 1]]
    cols += logs + [logs[-1]] * (epochs - step)
    cols += [min(logs), step / epochs]
    if hp is not None:
        cols += [float(x) for x in hp]
    return np.asarray(cols, dtype=np.float64)


@dataclass
class JointModel:
    """See the module docstring; fit with :meth:`fit`, then :meth:`predict` and :meth:`lower`."""

    epochs: int
    use_spectrum: bool = True
    use_hp: bool = False
    dim: int = 16
    folds: int = 5
    alpha: float = 0.1
    seed: int = 0
    max_iter: int = 200
    tasks: tuple[str, ...] = ()
    models: list = field(default_factory=list)
    residuals: dict = field(default_factory=dict)  # step -> sorted out-of-fold residuals
    first: np.ndarray | None = None  # sorted out-of-fold step-0 predictions of the fitted nets
    cap: float = LOG_CAP
    spectrum_k: int | None = None  # the leading exponents it reads (None: the whole spectrum)

    @property
    def inputs(self) -> str:
        """What it reads beside the loss curve: "spectrum", "hp", "spectrum+hp" or "curve"."""
        return "+".join([n for n, used in (("spectrum", self.use_spectrum),
                                           ("hp", self.use_hp)) if used]) or "curve"

    def features(self, spectrum, values, step, hp=None) -> np.ndarray:
        return joint_features(spectrum, values, step, self.epochs, hp if self.use_hp else None,
                              dim=self.dim, use_spectrum=self.use_spectrum,
                              spectrum_k=self.spectrum_k)

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray, steps: np.ndarray
            ) -> JointModel:
        """Rows ``x`` (:meth:`features`), log-final targets ``y``, the network each row belongs
        to (``groups``) and its step."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        x, y = np.asarray(x, float), np.asarray(y, float)
        groups, steps = np.asarray(groups), np.asarray(steps, int)
        check_int("folds", self.folds, low=2)
        names = np.unique(groups)
        if names.size < self.folds:
            raise ValueError(f"need at least {self.folds} networks to cross-fit, got "
                             f"{names.size}")
        fold_of = dict(zip(names, np.random.default_rng(self.seed).permutation(names.size)
                           % self.folds, strict=True))
        fold = np.array([fold_of[g] for g in groups])
        oof = np.empty_like(y)
        self.models = []
        for f in range(self.folds):
            m = HistGradientBoostingRegressor(loss="absolute_error", max_iter=self.max_iter,
                                              learning_rate=0.1, max_leaf_nodes=15,
                                              min_samples_leaf=10, random_state=self.seed + f)
            m.fit(x[fold != f], y[fold != f])
            oof[fold == f] = m.predict(x[fold == f])
            self.models.append(m)
        res = y - oof
        self.residuals = {int(s): np.sort(res[steps == s]) for s in np.unique(steps)}
        self.first = np.sort(oof[steps == 0])
        return self

    def predict(self, rows) -> np.ndarray:
        rows = np.atleast_2d(np.asarray(rows, float))
        if rows.shape[0] != 1:
            return np.mean([m.predict(rows) for m in self.models], axis=0)
        key = rows.tobytes()  # a study asks about the same rows again and again
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            if len(cache) >= CACHE_ROWS:
                cache.clear()
            cache[key] = float(np.mean([m.predict(rows)[0] for m in self.models]))
        return np.array([cache[key]])

    def margin(self, step: int, alpha: float | None = None) -> float:
        """The ``alpha`` quantile of the out-of-fold residuals at ``step`` (the nearest step
        recorded): the lower bound is the prediction plus this (it is <= 0 when calibrated)."""
        if not self.residuals:
            raise RuntimeError("this JointModel has not been fitted")
        s = min(self.residuals, key=lambda k: abs(k - step))
        return float(np.quantile(self.residuals[s], self.alpha if alpha is None else alpha))

    def first_quantile(self, q: float) -> float:
        """The ``q`` quantile of the out-of-fold step-0 predictions on the fitted networks: the
        prediction a configuration must beat to be in the best ``q`` share of them."""
        if self.first is None or not len(self.first):
            raise RuntimeError("this JointModel has no step-0 predictions: refit it")
        return float(np.quantile(self.first, q))

    # ---- shipping
    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_cache", None)
        return state

    @property
    def version(self) -> str:
        return "joint-" + hashlib.sha256(pickle.dumps(self, protocol=4)).hexdigest()[:12]


CACHE_ROWS = 200_000
LEARN = ("none", "stack", "finetune")
FINETUNE_TREES = 30


class JointPruner(BasePruner):
    """See the module docstring. ``hp_of``: params -> the hyperparameter vector the model was
    fitted with (needed when it uses them); ``store``: where the epoch-0 spectrum is read;
    ``screen``: whether it may prune at step 0 (on the untrained network alone)."""

    def __init__(self, model: JointModel, *, k: int = 1, alpha: float | None = None,
                 screen: bool = True, screen_top: float = 1.0,
                 screen_quantile: float | None = None, screen_warmup: int = 0,
                 screen_records: bool = False, screen_adapt: int = 0, learn: str = "none",
                 stack_from: int = 8, finalists: int | None = None,
                 hp_of: Callable[[dict], np.ndarray] | None = None,
                 store: SpectrumStore | None = None, then: BasePruner | None = None):
        if not isinstance(model, JointModel) or not model.models:
            raise ValueError("model must be a fitted JointModel")
        if model.use_hp and hp_of is None:
            raise ValueError("this model reads the hyperparameters: give hp_of")
        self.model = model
        self.k = check_int("k", k, low=1)
        self.alpha = model.alpha if alpha is None else check_number("alpha", alpha, low=0.0,
                                                                    high=1.0)
        self.screen = bool(screen)
        self.screen_top = check_number("screen_top", screen_top, low=0.0, high=1.0,
                                       low_open=True)
        self._first: dict[int, float] = {}            # trial number -> step-0 prediction
        self.screen_warmup = check_int("screen_warmup", screen_warmup, low=0)
        self.screen_records = bool(screen_records)
        self.screen_adapt = check_int("screen_adapt", screen_adapt, low=0)
        self.quantile = None if screen_quantile is None else check_number(
            "screen_quantile", screen_quantile, low=0.0, high=1.0, low_open=True)
        self.cut0 = None if self.quantile is None else model.first_quantile(self.quantile)
        self.reason: str | None = None  # why the last trial pruned was
        self.prediction: float | None = None  # the final it predicted for the last trial
        self.learn = check_choice("learn", learn, LEARN)
        self.stack_from = check_int("stack_from", stack_from, low=2)
        self.hp_of, self.store = hp_of, store or TrialAttrStore()
        self._latest: dict[int, float] = {}           # trial number -> latest prediction
        self._history: dict[int, dict[int, float]] = {}  # trial -> step -> prediction
        self._stack: tuple[float, float, dict] | None = None
        self._tuned = None  # the study's trees on the carried model's residuals (finetune)
        self._learnt_on = 0
        self.finalists = None if finalists is None else check_int("finalists", finalists, low=1)
        if self.finalists is not None and not self.screen:
            raise ValueError("finalists: a planned screen screens at step 0: keep screen on")
        if self.screen_adapt and self.quantile is None:
            raise ValueError("screen_adapt takes its share from screen_quantile: give one")
        if then is not None and not isinstance(then, BasePruner):
            raise ValueError(f"then must be an Optuna pruner, got {type(then).__name__}")
        self.then = then

    @property
    def reads_initial_spectrum(self) -> bool:
        return self.model.use_spectrum  # at every step: the epoch-0 spectrum is a feature

    def _row(self, study, trial: FrozenTrial, step: int) -> np.ndarray:
        iv = trial.intermediate_values
        if any(s not in iv for s in range(step + 1)):
            raise KeyError(step)
        z0 = self.store.spectrum(study, trial, 0) if self.model.use_spectrum else None
        try:
            hp = self.hp_of(trial.params) if self.model.use_hp else None
        except ValueError:  # parameters the model cannot read: no prediction, no decision
            raise KeyError(step) from None
        return self.model.features(z0, [iv[s] for s in range(step + 1)], step, hp)

    def _predict(self, study, trial: FrozenTrial, step: int) -> tuple[float, float]:
        """(the carried model's prediction, the study's: through what it learnt)."""
        row = self._row(study, trial, step)
        raw = float(self.model.predict(row)[0])
        if self._tuned is not None:
            return raw, raw + float(self._tuned.predict(row[None, :])[0])
        return raw, self._stacked(raw)

    def _firsts(self, study, number: int, pred: float) -> np.ndarray:
        """The step-0 predictions of every trial of the study so far, this one's ``pred``
        included (those of trials this process has not seen, after a restart, predicted
        again)."""
        self._first[number] = pred
        for t in study.get_trials(deepcopy=False):
            if t.number not in self._first and 0 in t.intermediate_values:
                with contextlib.suppress(KeyError):  # its spectrum is not stored
                    self._first[t.number] = self._predict(study, t, 0)[1]
        return np.array(list(self._first.values()))

    def _stacked(self, raw: float) -> float:
        """A raw prediction through the study's affine map, once one is fitted."""
        if self._stack is None:
            return raw
        a, b, _ = self._stack
        return a * raw + b

    def _relearn(self, study) -> None:
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.number in self._history and t.value is not None]
        if len(done) < self.stack_from or len(done) == self._learnt_on:
            return
        self._learnt_on = len(done)
        if self.learn == "finetune":
            self._finetune(study, done)
            return
        p, y, s = [], [], []
        for t in done:
            for step, pred in self._history[t.number].items():
                p.append(pred), y.append(log_loss(t.value)), s.append(step)
        p, y, s = np.array(p), np.array(y), np.array(s)
        a, b = np.polyfit(p, y, 1) if np.ptp(p) > 1e-9 else (1.0, float(np.mean(y - p)))
        a = float(np.clip(a, 0.25, 4.0))
        b = float(np.mean(y - a * p))
        res = y - (a * p + b)
        self._stack = (a, b, {int(k): np.sort(res[s == k]) for k in np.unique(s)})

    def _finetune(self, study, done: list[FrozenTrial]) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        rows, y = [], []
        for t in done:
            for step in range(min(t.last_step, self.model.epochs) + 1):
                with contextlib.suppress(KeyError):
                    rows.append(self._row(study, t, step))
                    y.append(log_loss(t.value))
        x = np.asarray(rows)
        residual = np.asarray(y) - self.model.predict(x)
        # shrunk and shallow: a study's few trials correct the carried model, not replace it
        self._tuned = HistGradientBoostingRegressor(
            loss="absolute_error", max_iter=FINETUNE_TREES, learning_rate=0.1,
            max_leaf_nodes=4, min_samples_leaf=max(5, len(rows) // 10),
            random_state=self.model.seed).fit(x, residual)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        self.reason = self.prediction = None
        step = trial.last_step
        if step is None or step > self.model.epochs or (step == 0 and not self.screen):
            return False
        if self.finalists is not None and step == 0:
            if RERUN in trial.user_attrs:
                return False  # a finalist: chosen by its screen, it trains
            self.reason = self._planned(study, trial)
            return True
        if self.learn != "none":
            self._relearn(study)
        try:
            raw, pred = self._predict(study, trial, step)
        except KeyError:
            return False
        self._history.setdefault(trial.number, {})[step] = raw
        self.prediction = math.exp(pred)
        margin = self.model.margin(step, self.alpha)
        if self._stack is not None:
            res = self._stack[2]
            near = min(res, key=lambda k: abs(k - step))
            if res[near].size >= self.stack_from:
                margin = float(np.quantile(res[near], self.alpha))
        self._latest[trial.number] = pred
        if self.then is not None and step >= 1:
            return self.then.prune(study, trial)
        if study.direction != StudyDirection.MINIMIZE:
            return False  # the model predicts losses
        self.reason = self._refusal(study, trial, step, pred, margin)
        return self.reason is not None

    def _refusal(self, study, trial: FrozenTrial, step: int, pred: float, margin: float
                 ) -> str | None:
        """Why the trial is pruned at ``step`` (None: it continues). Predictions are logs."""
        if step == 0 and self.cut0 is not None:
            # the study's own best pass too: a study whose configurations all predict worse
            # than the reference (other settings, other data) still trains some
            if pred > self.cut0:
                return self._screened(study, trial.number, pred)
        elif step == 0 and (self.screen_top < 1.0 or self.screen_warmup):
            firsts = self._firsts(study, trial.number, pred)
            if len(firsts) <= self.screen_warmup:
                return f"screen: one of the study's first {self.screen_warmup} configurations"
            if np.mean(firsts < pred) >= self.screen_top:
                return (f"screen: predicted final {math.exp(pred):.4g} is not in the best "
                        f"{self.screen_top:.0%} of the study's so far")
        return self._conformal(study, trial, step, pred, margin)

    def _planned(self, study, trial: FrozenTrial) -> str:
        """Why a configuration of a planned screen stops at step 0 (they all do)."""
        try:
            pred = self._predict(study, trial, 0)[1]
        except KeyError:
            return "planned screen: no prediction (its parameters cannot be read): not ranked"
        self._first[trial.number] = pred
        self.prediction = math.exp(pred)
        return (f"planned screen: predicted final {math.exp(pred):.4g}; the best "
                f"{self.finalists} of the screened configurations train once all are screened")

    def ranked(self, study) -> list[tuple[float, FrozenTrial]]:
        """The configurations the study screened at step 0, best step-0 prediction (a log)
        first: trials with a step-0 value that are not finalists and did not fail (a failed
        one is queued again and screened as its retry), those this process has not seen
        predicted again."""
        ranked = []
        for t in study.get_trials(deepcopy=False):
            if RERUN in t.user_attrs or 0 not in t.intermediate_values \
                    or t.state == TrialState.FAIL:
                continue
            if t.number not in self._first:
                with contextlib.suppress(KeyError):
                    self._first[t.number] = self._predict(study, t, 0)[1]
            if t.number in self._first:
                ranked.append((self._first[t.number], t))
        ranked.sort(key=lambda p: (p[0], p[1].number))
        return ranked

    def _screened(self, study, number: int, pred: float) -> str | None:
        """Why a configuration worse than the fixed cut is refused (None: the study's own best
        let it pass)."""
        why = (f"screen: predicted final {math.exp(pred):.4g} is not in the best "
               f"{self.quantile:.0%} of the model's ({math.exp(self.cut0):.4g})")
        if not (self.screen_records or self.screen_adapt):
            return why
        firsts = self._firsts(study, number, pred)
        if self.screen_records and len(firsts) > self.screen_warmup and pred <= firsts.min():
            return None
        if self.screen_adapt and len(firsts) >= self.screen_adapt \
                and np.mean(firsts < pred) < self.quantile:
            return None
        return why + " nor " + " or ".join(
            (["a record of the study"] if self.screen_records else [])
            + ([f"in the best {self.quantile:.0%} of its {len(firsts)}"]
               if self.screen_adapt else []))

    def _conformal(self, study, trial: FrozenTrial, step: int, pred: float, margin: float
                   ) -> str | None:
        estimates = []
        for t in study.get_trials(deepcopy=False):
            if t.number == trial.number:
                continue
            if t.state == TrialState.COMPLETE and t.value is not None:
                estimates.append(log_loss(t.value))
            elif t.number in self._latest:
                estimates.append(self._latest[t.number])
        if len(estimates) < self.k:
            return None
        kth = sorted(estimates)[self.k - 1]
        if pred + margin > kth:
            return (f"joint model: lower bound {math.exp(pred + margin):.4g} of the final is "
                    f"worse than the study's best estimate {math.exp(kth):.4g}"
                    + ("" if self.k == 1 else f" (the {self.k}th)"))
        return None


def seed_of(trial: FrozenTrial) -> int:
    """The seed a trial trains with: its number, or for a finalist (and its retries) the seed
    of the configuration it runs again, so that its untrained network is the one screened."""
    return int(trial.user_attrs.get(SEED, trial.number))


def queue_finalists(study: optuna.Study, pruner: JointPruner, n: int) -> list[int]:
    """Queue those of the ``n`` best configurations of ``pruner``'s planned screen
    (:meth:`JointPruner.ranked`) that were not queued yet, best first: the study's next trials
    run them, each marked with the screened trial it runs again (:data:`RERUN`) and its seed
    (:data:`SEED`; with ``study.optimize`` the objective seeds each trial from
    :func:`seed_of`). Calling it again queues only what is missing (configurations screened
    since may rank among the ``n`` best); the numbers of the screened trials queued."""
    if pruner.finalists is None:
        raise ValueError("queue_finalists: the pruner has no planned screen (finalists)")
    return rerun(study, [t for _, t in pruner.ranked(study)[:max(n, 0)]])


def reruns(study: optuna.Study) -> set[int]:
    """The screened trials some trial of the study runs again (queued, running or done)."""
    return {t.user_attrs[RERUN] for t in study.get_trials(deepcopy=False)
            if RERUN in t.user_attrs}


def rerun(study: optuna.Study, screened: list[FrozenTrial]) -> list[int]:
    """Queue each of ``screened`` that no trial runs again yet, with its parameters and seed;
    the numbers queued."""
    queued = reruns(study)
    chosen = [t for t in screened if t.number not in queued]
    for t in chosen:
        study.enqueue_trial(t.params, user_attrs={RERUN: t.number, SEED: seed_of(t)},
                            skip_if_exists=False)
    return [t.number for t in chosen]
