"""The coordinator: studies, leases, reports, results and the AeLLE models, on one database.

Optuna (``RDBStorage``) owns studies and trials; :mod:`service.db` holds the rest. The web layer
(:mod:`service.api`) only translates HTTP to these calls and the errors below to status codes.
Samplers and pruners are rebuilt from each study's stored spec when the study is first used by
this process and kept in memory (an AeLLE pruner keeps its model there, retrains it in the
background and persists each new model, which a restarted coordinator loads again).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
import secrets
import threading
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import delete, func, insert, select, update

from aelle.pruner import ATTR, AeLLEPruner, ShadowPruner, SpectrumPruner
from service.config import ServiceSettings
from service.db import Database, LeaseRow, ModelRow, ReportRow, StudyRow, pack
from service.migrations import migrate
from service.specs import (
    Pretrained,
    StudyCreate,
    build_pruner,
    build_sampler,
    pretrained_source,
    search_space,
    task_of,
)
from service.specs import trial_settings as spec_settings
from service.specs import validate as validate_spec
from service.spectra import ReportSpectrumStore

log = logging.getLogger("aelle.service")


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


class Invalid(ValueError):
    pass


@dataclass
class Loaded:
    """A study as this process uses it: Optuna's handle and what its spec builds."""

    study: optuna.Study
    spec: StudyCreate
    space: dict[str, BaseDistribution]
    settings: dict[str, Any]
    pruner: optuna.pruners.BasePruner
    spectrum_sizes: dict[int, int] = field(default_factory=dict)  # trial id -> expected length
    completed: list[FrozenTrial] | None = None  # cached; refreshed on completion and by age
    completed_at: float = 0.0

    @property
    def spectrum_pruner(self) -> SpectrumPruner | None:
        p = self.pruner.pruner if isinstance(self.pruner, ShadowPruner) else self.pruner
        return p if isinstance(p, SpectrumPruner) else None


@dataclass(frozen=True)
class Lease:
    study: str
    trial_id: int
    number: int
    task: str
    params: dict[str, Any]
    settings: dict[str, Any]
    token: str
    heartbeat_interval: int
    retry_of: int | None


STATE_NAMES = {TrialState.RUNNING: "running", TrialState.WAITING: "waiting",
               TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
               TrialState.FAIL: "failed"}


def state_name(t: FrozenTrial) -> str:
    if t.state == TrialState.PRUNED and t.user_attrs.get(f"{ATTR}outcome") == "diverged":
        return "diverged"
    return STATE_NAMES[t.state]


class Coordinator:
    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.db = Database(settings.database_url)
        for step in migrate(settings.database_url):
            log.info("database: %s", step)
        engine_kwargs = ({"connect_args": {"timeout": 30}}
                         if settings.database_url.startswith("sqlite")
                         else {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20})
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.storage = RDBStorage(
                settings.database_url, engine_kwargs=engine_kwargs,
                heartbeat_interval=settings.heartbeat_interval,
                grace_period=settings.grace_period,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=settings.max_retry))
        self.store = ReportSpectrumStore(self.db)
        self._loaded: dict[int, Loaded] = {}
        self._guard = threading.Lock()
        self._locks: defaultdict[tuple, threading.Lock] = defaultdict(threading.Lock)
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._tls = threading.local()  # the decision the pruner recorded, per request thread
        self._leases: dict[int, tuple[str, int]] = {}  # trial id -> (lease token, study id)
        self._beats: dict[int, float] = {}  # trial id -> when its last heartbeat was recorded
        # trial id -> the running trial as its pruner sees it, kept up to date by its reports
        # (reading it back from the database costs more than the rest of a report)
        self._frozen: dict[int, FrozenTrial] = {}
        self._exhausted: set[int] = set()  # studies whose budget is spent with nothing running

    # ---- lifecycle
    def start(self) -> None:
        """Start failing trials whose heartbeat went stale (and re-queueing them)."""
        warm_up_training()
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=self._sweep_loop, name="aelle-sweeper",
                                             daemon=True)
            self._sweeper.start()

    def close(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=10)
        self.wait_for_models(timeout=30)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.settings.stale_check_seconds):
            try:
                self.sweep()
            except Exception:  # keep sweeping: one bad pass must not end heartbeats
                log.exception("stale-trial sweep failed")

    def sweep(self) -> int:
        """Fail the running trials whose heartbeat is stale (their retries are queued by
        Optuna's callback); returns how many were failed.

        Only studies with open leases are visited (a running trial always has one), so the
        cost follows the work in flight, not every study the database ever held; a lease whose
        trial stopped running is closed, and the trial leaves the caches."""
        with self.db.session() as s:
            open_leases = s.execute(select(LeaseRow.study_id, LeaseRow.trial_id)
                                    .where(LeaseRow.finished_at.is_(None))).all()
        by_study: dict[int, set[int]] = defaultdict(set)
        for study_id, trial_id in open_leases:
            by_study[study_id].add(trial_id)
        failed = 0
        for study_id, trial_ids in by_study.items():
            loaded = self._load(study_id)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                fail_stale_trials(loaded.study)
            running = {t._trial_id for t in self.storage.get_all_trials(
                study_id, deepcopy=False, states=(TrialState.RUNNING,))}
            ended = trial_ids - running
            if not ended:
                continue
            # stale-failed here or in a pass that stopped before this point; a trial whose
            # result was posted meanwhile closes its own lease and is not counted
            failed += sum(self.storage.get_trial(t).state == TrialState.FAIL for t in ended)
            with self.db.session() as s:
                s.execute(update(LeaseRow).where(LeaseRow.trial_id.in_(ended),
                                                 LeaseRow.finished_at.is_(None))
                          .values(finished_at=dt.datetime.now(dt.UTC)))
            for trial_id in ended:
                self._forget(loaded, trial_id)
        if failed:
            log.info("failed %d stale trial(s); retries queued", failed)
        return failed

    def _forget(self, loaded: Loaded, trial_id: int) -> None:
        """Drop a trial that stopped running from the caches of running trials."""
        self._leases.pop(trial_id, None)
        self._frozen.pop(trial_id, None)
        self._beats.pop(trial_id, None)
        loaded.spectrum_sizes.pop(trial_id, None)

    def _lock(self, *key) -> threading.Lock:
        with self._guard:
            return self._locks[key]

    # ---- studies
    def create_study(self, spec: StudyCreate) -> dict:
        try:
            validate_spec(spec, self._pretrained(spec))
        except ValueError as e:
            raise Invalid(str(e)) from None
        with self._lock("create"):
            with self.db.session() as s:
                if s.scalar(select(StudyRow).where(StudyRow.name == spec.name)) is not None:
                    raise Conflict(f"a study named {spec.name!r} exists")
            try:
                study = optuna.create_study(study_name=spec.name, storage=self.storage,
                                            direction=spec.direction)
            except DuplicatedStudyError:
                raise Conflict(f"an Optuna study named {spec.name!r} exists in this "
                               "database") from None
            study.set_user_attr("aelle:task", spec.task)
            study.set_user_attr("aelle:pruner", spec.pruner.name)
            with self.db.session() as s:
                s.add(StudyRow(study_id=study._study_id, name=spec.name,
                               spec=spec.model_dump(mode="json"), budget=spec.budget))
        return self.summary(spec.name)

    def _row(self, name: str) -> StudyRow:
        with self.db.session() as s:
            row = s.scalar(select(StudyRow).where(StudyRow.name == name))
        if row is None:
            raise NotFound(f"no study named {name!r}")
        return row

    def _load(self, study_id: int) -> Loaded:
        with self._lock("load", study_id):
            if study_id in self._loaded:
                return self._loaded[study_id]
            with self.db.session() as s:
                row = s.get(StudyRow, study_id)
                latest = _latest_model(s, study_id)
            spec = StudyCreate.model_validate(row.spec)
            pruner = build_pruner(spec, self.store, on_fit=self._persist_model(study_id),
                                  model=latest.blob if latest is not None else None,
                                  recorder=self._record_decision,
                                  completed=self._completed,
                                  pretrained=self._pretrained(spec))
            study = optuna.load_study(study_name=row.name, storage=self.storage,
                                      sampler=build_sampler(spec), pruner=pruner)
            loaded = Loaded(study, spec, search_space(spec), spec_settings(spec), pruner)
            self._remember_stopped(loaded)
            self._loaded[study_id] = loaded
            return loaded

    def _remember_stopped(self, loaded: Loaded) -> None:
        """Tell a spectrum pruner the predictions it pruned trials on before this process
        started (its cut counts them)."""
        p = loaded.spectrum_pruner
        if p is None:
            return
        with self.db.session() as s:
            rows = s.execute(select(ReportRow.trial_id, ReportRow.prediction).where(
                ReportRow.study_id == loaded.study._study_id, ReportRow.decision == "prune",
                ReportRow.prediction.is_not(None))).all()
        for trial_id, prediction in rows:
            p.remember_stopped(trial_id, prediction)

    def _pretrained(self, spec: StudyCreate) -> Pretrained | None:
        """The model and final values of the study ``pruner.settings.pretrained`` names."""
        source = pretrained_source(spec)
        if source is None:
            return None
        where = "pruner.settings.pretrained"
        with self.db.session() as s:
            row = s.scalar(select(StudyRow).where(StudyRow.name == source))
            latest = _latest_model(s, row.study_id) if row is not None else None
        if row is None:
            raise Invalid(f"{where}: no study named {source!r}")
        if row.spec["task"] != spec.task or row.spec["direction"] != spec.direction:
            raise Invalid(f"{where}: study {source!r} is a {row.spec['direction']} study of "
                          f"task {row.spec['task']!r}; this one is a {spec.direction} study "
                          f"of {spec.task!r}")
        if latest is None:
            raise Invalid(f"{where}: study {source!r} has no AeLLE model yet")
        values = [t.value for t in self.storage.get_all_trials(
            row.study_id, deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)]
        return Pretrained(source, latest.blob, values)

    def _completed(self, study: optuna.Study) -> list[FrozenTrial]:
        """The study's completed trials for its pruner: kept here, appended to when a trial
        completes through this coordinator, and read again after a few seconds (another
        coordinator process may complete trials too)."""
        loaded = self._loaded.get(study._study_id)
        if loaded is None:
            return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        with self._lock("completed", study._study_id):
            if loaded.completed is None or time.monotonic() - loaded.completed_at > 5.0:
                loaded.completed = study.get_trials(deepcopy=False,
                                                    states=(TrialState.COMPLETE,))
                loaded.completed_at = time.monotonic()
            return list(loaded.completed)

    def _persist_model(self, study_id: int):
        def persist(pruner: SpectrumPruner) -> None:
            if not isinstance(pruner, AeLLEPruner) or pruner.model is None:
                return
            model = pruner.model
            h = model.history
            metrics = {"fit_seconds": round(h.seconds, 3),
                       "reconstruction": h.recon[-1] if h.recon else None,
                       "prediction_error": h.predict[-1] if h.predict else None,
                       "epochs": len(h.recon), "ramp_started": h.ramp_started}
            with self.db.session() as s:
                s.add(ModelRow(study_id=study_id, version=model.version,
                               blob=model.to_bytes(), trials=pruner.fitted_on,
                               spectra=model.n_train, metrics=metrics))
                # keep the last few models: enough to inspect, bounded in size
                old = s.scalars(select(ModelRow.id).where(ModelRow.study_id == study_id)
                                .order_by(ModelRow.id.desc()).offset(5)).all()
                if old:
                    s.execute(delete(ModelRow).where(ModelRow.id.in_(old)))
        return persist

    def list_studies(self) -> list[dict]:
        with self.db.session() as s:
            names = s.scalars(select(StudyRow.name).order_by(StudyRow.created_at)).all()
        return [self.summary(n) for n in names]

    def summary(self, name: str) -> dict:
        row = self._row(name)
        loaded = self._load(row.study_id)
        trials = loaded.study.get_trials(deepcopy=False)
        counts = Counter(state_name(t) for t in trials)
        used = self._used(row.study_id)
        best = None
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if done:
            b = loaded.study.best_trial
            best = {"number": b.number, "value": b.value, "params": b.params}
        return {"name": row.name, "task": loaded.spec.task, "direction": loaded.spec.direction,
                "pruner": loaded.spec.pruner.name, "shadow": loaded.spec.pruner.shadow,
                "budget": row.budget, "used": used, "stopped": row.stopped,
                "counts": dict(counts), "best": best,
                "epochs_trained": sum(len(t.intermediate_values) for t in trials),
                "created_at": row.created_at.isoformat()}

    def stop_study(self, name: str) -> dict:
        """No new trial is leased; running trials finish."""
        row = self._row(name)
        with self.db.session() as s:
            s.get(StudyRow, row.study_id).stopped = True
        return self.summary(name)

    def spec(self, name: str) -> dict:
        return self._row(name).spec

    # ---- work
    def lease(self, worker: str) -> Lease | None:
        """A trial to run, from the oldest active study with budget left; None: no work."""
        with self.db.session() as s:
            rows = s.scalars(select(StudyRow).where(StudyRow.stopped.is_(False))
                             .order_by(StudyRow.created_at)).all()
        for row in rows:
            if row.study_id in self._exhausted:
                continue
            lease = self._lease_from(row, worker)
            if lease is not None:
                return lease
        return None

    def _used(self, study_id: int) -> int:
        """Trials started against the budget: a retry replaces the trial it retries, so the
        leases of first runs."""
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(LeaseRow).where(
                LeaseRow.study_id == study_id, LeaseRow.retry_of.is_(None)))

    def _waiting(self, study_id: int) -> list[FrozenTrial]:
        return self.storage.get_all_trials(study_id, deepcopy=False,
                                           states=(TrialState.WAITING,))

    def _open_leases(self, study_id: int) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(LeaseRow).where(
                LeaseRow.study_id == study_id, LeaseRow.finished_at.is_(None)))

    def _lease_from(self, row: StudyRow, worker: str) -> Lease | None:
        loaded = self._load(row.study_id)
        # Budgets hold across threads (lock) and coordinator processes (advisory lock). Only
        # the count and the new trial are made under the locks; sampling the parameters (TPE
        # reads the study's trials) happens outside, so that leases do not queue behind it.
        with self._lock("study", row.study_id), self.db.advisory_lock(row.study_id):
            used = self._used(row.study_id)
            waiting = self._waiting(row.study_id)
            if not waiting and used >= row.budget:
                if self._open_leases(row.study_id):
                    return None
                # Nothing runs. Retries come from running trials and are queued before their
                # lease closes, so one queued meanwhile is seen now; without one the study never
                # has work again (no process starts a trial past the budget): later leases skip
                # it without a query.
                waiting = self._waiting(row.study_id)
                if not waiting:
                    self._exhausted.add(row.study_id)
                    return None
            with warnings.catch_warnings():  # "heartbeat is meant for optimize()": we heartbeat
                warnings.simplefilter("ignore", UserWarning)
                trial = loaded.study.ask()
            self.storage.record_heartbeat(trial._trial_id)
            retry_of = (self.storage.get_trial_system_attrs(trial._trial_id).get("failed_trial")
                        if waiting else None)
            token = secrets.token_hex(16)
            with self.db.session() as s:  # every lease is a new trial: a plain insert
                s.execute(insert(LeaseRow), [{
                    "trial_id": trial._trial_id, "study_id": row.study_id, "token": token,
                    "worker": worker[:256], "leased_at": dt.datetime.now(dt.UTC),
                    "retry_of": retry_of}])
            self._leases[trial._trial_id] = (token, row.study_id)
            self._beats[trial._trial_id] = time.monotonic()
        params = task_of(loaded.spec).suggest(trial, loaded.space)
        # the Trial keeps its own FrozenTrial up to date as parameters are suggested: the
        # running trial as its pruner will see it, without reading it back
        frozen = getattr(trial, "_cached_frozen_trial", None)
        self._frozen[trial._trial_id] = (copy.deepcopy(frozen) if frozen is not None
                                         else self.storage.get_trial(trial._trial_id))
        return Lease(study=row.name, trial_id=trial._trial_id, number=trial.number,
                     task=loaded.spec.task, params=params, settings=loaded.settings,
                     token=token, heartbeat_interval=self.settings.heartbeat_interval,
                     retry_of=retry_of)

    def heartbeat(self, trial_id: int, token: str) -> dict:
        self._leased(trial_id, token)
        trial = self.storage.get_trial(trial_id)
        if trial.state != TrialState.RUNNING:
            raise Conflict(f"trial {trial_id} is {state_name(trial)}: stop working on it")
        self.storage.record_heartbeat(trial_id)
        return {"trial_id": trial_id, "state": "running"}

    def _spectrum_size(self, loaded: Loaded, trial_id: int) -> int:
        size = loaded.spectrum_sizes.get(trial_id)
        if size is None:
            cached = self._frozen.get(trial_id)
            params = (cached or self.storage.get_trial(trial_id)).params
            size = task_of(loaded.spec).spectrum_size(params, loaded.settings)
            loaded.spectrum_sizes[trial_id] = size
        return size

    def report(self, trial_id: int, token: str, step: int, value: float,
               spectrum: list[float] | None) -> dict:
        """Store one epoch's value and spectrum, ask the pruner, and answer prune or continue
        (a repeated report of the same epoch gets the same answer)."""
        loaded = self._leased(trial_id, token)
        if not math.isfinite(value):
            raise Invalid(f"value must be finite, got {value} (report a diverged network as a "
                          "result with state 'diverged')")
        z = None
        if spectrum is not None:
            z = np.asarray(spectrum, dtype=np.float64)
            expected = self._spectrum_size(loaded, trial_id)
            if z.shape != (expected,):
                raise Invalid(f"spectrum has {z.size} exponents; this trial of "
                              f"{loaded.spec.name} reports {expected}")
            if not np.isfinite(z).all():
                raise Invalid("spectrum has non-finite exponents (report a diverged network "
                              "as a result with state 'diverged')")
        max_epochs = loaded.settings["epochs"]
        if step > max_epochs:
            raise Invalid(f"epoch {step} is beyond the study's {max_epochs} epochs per trial")
        with self._lock("trial", trial_id):
            frozen = self._frozen.get(trial_id) or self.storage.get_trial(trial_id)
            # a step this trial has not reported (Optuna's copy says) needs no look-up; the
            # primary key still refuses a duplicate another coordinator process stored
            old = None
            if step in frozen.intermediate_values:
                with self.db.session() as s:
                    old = s.get(ReportRow, (trial_id, step))
            if old is not None:
                same = old.value == value and (
                    (z is None and old.spectrum is None)
                    or (z is not None and old.spectrum == pack(z)))
                if not same:
                    raise Conflict(f"epoch {step} of trial {trial_id} was already reported "
                                   "with other values")
                return self._answer(old)
            try:  # also the state check: a finished trial refuses the value
                self.storage.set_trial_intermediate_value(trial_id, step, value)
            except UpdateFinishedTrialError:
                t = self.storage.get_trial(trial_id)
                raise Conflict(f"trial {t.number} is {state_name(t)}: no more reports") from None
            frozen.intermediate_values = {**frozen.intermediate_values, step: value}
            self._frozen[trial_id] = frozen
            self._tls.attrs = None
            with self.store.pending(trial_id, step, z):
                # the last epoch has nothing left to save: the trial completes
                prune = loaded.study.pruner.prune(loaded.study, frozen) and step < max_epochs
            attrs = self._tls.attrs or {}
            row = {"trial_id": trial_id, "step": step, "study_id": loaded.study._study_id,
                   "value": value, "spectrum": None if z is None else pack(z),
                   "size": 0 if z is None else z.size,
                   "max_le": None if z is None else float(z.max()),
                   "mean_le": None if z is None else float(z.mean()),
                   "decision": "prune" if prune else "continue",
                   "prediction": attrs.get("prediction"), "model": attrs.get("model"),
                   "reason": self._reason(loaded, attrs, prune),
                   "created_at": dt.datetime.now(dt.UTC)}
            with self.db.session() as s:  # a Core insert: the ORM's bookkeeping costs more
                s.execute(insert(ReportRow), [row])
            self._beat(trial_id)
            return self._answer(ReportRow(**row))

    def _record_decision(self, study: optuna.Study, trial: FrozenTrial, attrs: dict) -> None:
        """The spectrum pruners' recorder here: the decision goes to the reports table with
        the report (one write), not to five trial attributes; only the explore mark, which
        later steps read, is stored on the trial."""
        self._tls.attrs = attrs
        if attrs.get("explore") and not trial.user_attrs.get(f"{ATTR}explore"):
            self.storage.set_trial_user_attr(trial._trial_id, f"{ATTR}explore", True)
            trial.set_user_attr(f"{ATTR}explore", True)  # the cached copy later steps see

    def _beat(self, trial_id: int) -> None:
        """A report is a sign of life: record it as a heartbeat, at most twice an interval."""
        now = time.monotonic()
        if now - self._beats.get(trial_id, -1e9) >= self.settings.heartbeat_interval / 2:
            self.storage.record_heartbeat(trial_id)
            self._beats[trial_id] = now

    def _leased(self, trial_id: int, token: str) -> Loaded:
        """The study of a trial whose lease ``token`` is; the lease is cached (a trial's token
        never changes; a finished or failed trial is refused by Optuna's storage)."""
        cached = self._leases.get(trial_id)
        if cached is None:
            with self.db.session() as s:
                lease = s.get(LeaseRow, trial_id)
            if lease is None:
                raise NotFound(f"trial {trial_id} was never leased")
            cached = (lease.token, lease.study_id)
            if lease.finished_at is None:  # a late call about a finished trial stays uncached
                self._leases[trial_id] = cached
        if not secrets.compare_digest(cached[0].encode(), token.encode()):
            raise Conflict(f"trial {trial_id}: this lease is not the trial's current lease")
        return self._load(cached[1])

    @staticmethod
    def _reason(loaded: Loaded, attrs: dict, prune: bool) -> str | None:
        if attrs.get("decision"):
            detail = attrs.get("reason")
            if detail is None and attrs.get("prediction") is not None and "cut" in attrs:
                side = "worse than" if attrs["decision"] == "prune" else "within"
                detail = (f"predicted final {attrs['prediction']:.4g} {side} the cut "
                          f"{attrs['cut']:.4g}")
            return attrs["decision"] if not detail else f"{attrs['decision']}: {detail}"
        if prune:
            return f"{loaded.spec.pruner.name} pruner"
        return None

    @staticmethod
    def _answer(row: ReportRow) -> dict:
        return {"trial_id": row.trial_id, "epoch": row.step, "decision": row.decision,
                "prediction": row.prediction, "model": row.model, "reason": row.reason}

    def finish(self, trial_id: int, token: str, state: str, value: float | None,
               reason: str | None, retry: bool = False) -> dict:
        """The trial's outcome: complete (with its final value), pruned (after the coordinator
        said so), diverged (a non-finite loss or state) or failed (an error, with reason)."""
        loaded = self._leased(trial_id, token)
        with self._lock("trial", trial_id):
            trial = self.storage.get_trial(trial_id)
            if trial.state != TrialState.RUNNING:
                if state_name(trial) == state and (state != "complete" or trial.value == value):
                    return self._finished(trial)  # the same result again: idempotent
                raise Conflict(f"trial {trial.number} is already {state_name(trial)}")
            study = loaded.study
            if state == "complete":
                if value is None or not math.isfinite(value):
                    raise Invalid("a complete trial needs a finite value")
                study.tell(trial.number, value)
            elif state == "pruned":
                last = self._last_reports([trial_id]).get(trial_id)
                if last is not None and last.reason:
                    self.storage.set_trial_user_attr(trial_id, f"{ATTR}reason", last.reason)
                study.tell(trial.number, state=TrialState.PRUNED)
            elif state == "diverged":
                self.storage.set_trial_user_attr(trial_id, f"{ATTR}outcome", "diverged")
                self.storage.set_trial_user_attr(trial_id, f"{ATTR}reason",
                                                 (reason or "diverged")[:1024])
                study.tell(trial.number, state=TrialState.PRUNED)
            elif state == "failed":
                self.storage.set_trial_user_attr(trial_id, f"{ATTR}outcome", "failed")
                self.storage.set_trial_user_attr(trial_id, f"{ATTR}reason",
                                                 (reason or "failed")[:1024])
                study.tell(trial.number, state=TrialState.FAIL)
                if retry:  # the worker stopped, not the trial: run it again, same parameters
                    self._retry(study, self.storage.get_trial(trial_id))
            else:
                raise Invalid(f"state must be complete, pruned, diverged or failed, got "
                              f"{state!r}")
            with self.db.session() as s:
                s.get(LeaseRow, trial_id).finished_at = dt.datetime.now(dt.UTC)
            self._forget(loaded, trial_id)
        done = self.storage.get_trial(trial_id)
        if state == "complete":
            with self._lock("completed", study._study_id):
                if loaded.completed is not None:
                    loaded.completed.append(done)
            if loaded.spectrum_pruner is not None:
                loaded.spectrum_pruner.refresh(study)  # AeLLE: refits in the background
        return self._finished(done)

    def _retry(self, study: optuna.Study, failed: FrozenTrial) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback(max_retry=self.settings.max_retry)(study, failed)

    @staticmethod
    def _finished(trial: FrozenTrial) -> dict:
        return {"trial_id": trial._trial_id, "number": trial.number, "state": state_name(trial),
                "value": trial.value}

    # ---- reading
    def trials(self, name: str, state: str | None = None, top: int | None = None,
               order: str = "value") -> list[dict]:
        """The study's trials ranked: best value first (the direction decides), trials without
        a value after, by number."""
        row = self._row(name)
        loaded = self._load(row.study_id)
        trials = loaded.study.get_trials(deepcopy=False)
        if state is not None:
            trials = [t for t in trials if state_name(t) == state]
        last = self._last_reports([t._trial_id for t in trials])
        sign = 1.0 if loaded.spec.direction == "minimize" else -1.0

        def key(t: FrozenTrial):
            if order == "number":
                return (0, t.number)
            v = t.value if t.value is not None else _last_value(t)
            return (v is None, sign * v if v is not None else 0.0, t.number)

        trials = sorted(trials, key=key)
        if top is not None:
            trials = trials[:top]
        return [self._trial_row(t, last.get(t._trial_id)) for t in trials]

    def _last_reports(self, ids: list[int]) -> dict[int, ReportRow]:
        if not ids:
            return {}
        with self.db.session() as s:
            last = (select(ReportRow.trial_id, func.max(ReportRow.step).label("step"))
                    .where(ReportRow.trial_id.in_(ids)).group_by(ReportRow.trial_id)
                    .subquery())
            rows = s.scalars(select(ReportRow).join(
                last, (ReportRow.trial_id == last.c.trial_id) & (ReportRow.step == last.c.step)
            )).all()
        return {r.trial_id: r for r in rows}

    @staticmethod
    def _trial_row(t: FrozenTrial, last: ReportRow | None) -> dict:
        a = t.user_attrs
        return {"number": t.number, "trial_id": t._trial_id, "state": state_name(t),
                "value": t.value, "last_value": _last_value(t), "params": t.params,
                "epochs": len(t.intermediate_values),
                "max_le": last.max_le if last else None, "mean_le": last.mean_le if last else None,
                "prediction": last.prediction if last else None,
                "decision": last.decision if last else None,
                "reason": a.get(f"{ATTR}reason") if t.state in (TrialState.PRUNED,
                                                                 TrialState.FAIL)
                else None,
                "retry_of": t.system_attrs.get("failed_trial"),
                "started_at": _iso(t.datetime_start), "finished_at": _iso(t.datetime_complete)}

    def trial(self, name: str, number: int) -> dict:
        row = self._row(name)
        loaded = self._load(row.study_id)
        trials = [t for t in loaded.study.get_trials(deepcopy=False) if t.number == number]
        if not trials:
            raise NotFound(f"study {name!r} has no trial {number}")
        t = trials[0]
        with self.db.session() as s:
            reports = s.scalars(select(ReportRow).where(ReportRow.trial_id == t._trial_id)
                                .order_by(ReportRow.step)).all()
        out = self._trial_row(t, reports[-1] if reports else None)
        out["reports"] = [{"epoch": r.step, "value": r.value, "decision": r.decision,
                           "prediction": r.prediction, "model": r.model, "reason": r.reason,
                           "spectrum": None if r.spectrum is None
                           else r.spectrum_array().tolist()} for r in reports]
        out["user_attrs"] = {k: v for k, v in t.user_attrs.items()}
        return out

    def model_status(self, name: str) -> dict:
        row = self._row(name)
        loaded = self._load(row.study_id)
        with self.db.session() as s:
            latest = _latest_model(s, row.study_id)
            n_models = s.scalar(select(func.count()).select_from(ModelRow)
                                .where(ModelRow.study_id == row.study_id))
        p = loaded.spectrum_pruner
        status = {"pruner": loaded.spec.pruner.name,
                  "fitting": isinstance(p, AeLLEPruner) and p.fitting,
                  "in_use": getattr(getattr(p, "_scorer", None), "version", None),
                  "models_kept": n_models, "latest": None}
        if latest is not None:
            status["latest"] = {"version": latest.version, "trials": latest.trials,
                                "spectra": latest.spectra, "metrics": latest.metrics,
                                "created_at": latest.created_at.isoformat()}
        return status

    def model_bytes(self, name: str) -> bytes:
        row = self._row(name)
        with self.db.session() as s:
            latest = _latest_model(s, row.study_id)
        if latest is None:
            raise NotFound(f"study {name!r} has no AeLLE model yet")
        return latest.blob

    def wait_for_models(self, timeout: float = 60.0) -> None:
        """Join running background refits (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        for loaded in list(self._loaded.values()):
            p = loaded.spectrum_pruner
            if isinstance(p, AeLLEPruner):
                p.wait(max(0.0, deadline - time.monotonic()))


def _latest_model(session, study_id: int) -> ModelRow | None:
    return session.scalar(select(ModelRow).where(ModelRow.study_id == study_id)
                          .order_by(ModelRow.id.desc()).limit(1))


def warm_up_training() -> None:
    """Pay torch's first-optimizer cost (it imports its compiler stack, ~4 s holding the GIL)
    at start-up, not in the first background fit while reports wait."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _last_value(t: FrozenTrial) -> float | None:
    if not t.intermediate_values:
        return None
    return t.intermediate_values[max(t.intermediate_values)]


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.isoformat()
