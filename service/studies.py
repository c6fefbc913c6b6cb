"""Studies: create, list, show, stop; and each study as this process uses it (Optuna's handle,
what its spec builds, its completed trials for the pruner)."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import func, select

from aelle.pruners import ATTR, DecidingPruner, SpectrumPruner
from service.api.schemas import BestTrial, StudyPublic
from service.api.schemas import TrialState as State
from service.db import Database, LeaseRow, ReportRow, StudyRow
from service.errors import Conflict, Invalid, NotFound
from service.model_store import ModelStore
from service.optuna_compat import study_id
from service.pruning import (
    Pretrained,
    ServiceHooks,
    build_pruner,
    build_sampler,
    pretrained_source,
    validate,
)
from service.specs import StudyCreate, search_space, task_settings
from service.spectrum_store import ReportSpectrumStore

OUTCOME = f"{ATTR}outcome"  # a trial attribute: "diverged" or "failed"
REASON = f"{ATTR}reason"    # a trial attribute: why it was pruned, diverged or failed

_STATES = {TrialState.RUNNING: State.RUNNING, TrialState.WAITING: State.WAITING,
           TrialState.COMPLETE: State.COMPLETE, TrialState.PRUNED: State.PRUNED,
           TrialState.FAIL: State.FAILED}


def state_of(t: FrozenTrial) -> State:
    """A trial's state as the API names it: a diverged network is its own state (Optuna
    holds it as pruned)."""
    if t.state == TrialState.PRUNED and t.user_attrs.get(OUTCOME) == "diverged":
        return State.DIVERGED
    return _STATES[t.state]


@dataclass
class ActiveStudy:
    """A study as this process uses it: Optuna's handle and what its spec builds."""

    study: optuna.Study
    spec: StudyCreate
    space: dict[str, BaseDistribution]
    settings: dict[str, Any]  # the task settings every trial runs with
    pruner: DecidingPruner
    cache_seconds: float
    _completed: list[FrozenTrial] | None = None
    _completed_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def id(self) -> int:
        return study_id(self.study)

    @property
    def spectrum_pruner(self) -> SpectrumPruner | None:
        return self.pruner.spectrum_pruner

    def completed(self) -> list[FrozenTrial]:
        """The study's completed trials for its pruner: kept here, appended to when a trial
        completes through this process, and read again after ``cache_seconds`` (another
        coordinator process may complete trials too)."""
        with self._lock:
            if self._completed is None or \
                    time.monotonic() - self._completed_at > self.cache_seconds:
                self._completed = self.study.get_trials(deepcopy=False,
                                                        states=(TrialState.COMPLETE,))
                self._completed_at = time.monotonic()
            return list(self._completed)

    def add_completed(self, trial: FrozenTrial) -> None:
        with self._lock:
            if self._completed is not None:
                self._completed.append(trial)


class StudyCatalog:
    """The studies of one database, each loaded once per process."""

    def __init__(self, db: Database, storage: RDBStorage, models: ModelStore,
                 completed_cache_seconds: float):
        self.db, self.storage, self.models = db, storage, models
        self._store = ReportSpectrumStore(db)
        self._cache_seconds = completed_cache_seconds
        self._active: dict[int, ActiveStudy] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self._creating = threading.Lock()

    # ---- use cases
    def create(self, spec: StudyCreate) -> StudyPublic:
        try:
            validate(spec, self.pretrained(spec))
        except ValueError as e:
            raise Invalid(str(e)) from None
        with self._creating:
            with self.db.session() as s:
                if s.scalar(select(StudyRow).where(StudyRow.name == spec.name)) is not None:
                    raise Conflict(f"a study named {spec.name!r} exists")
            try:
                study = optuna.create_study(study_name=spec.name, storage=self.storage,
                                            direction=spec.direction)
            except DuplicatedStudyError:
                raise Conflict(f"an Optuna study named {spec.name!r} exists in this "
                               "database") from None
            # for optuna-dashboard and Optuna scripts reading the same database
            study.set_user_attr(f"{ATTR}task", spec.task)
            study.set_user_attr(f"{ATTR}pruner", spec.pruner.name)
            with self.db.session() as s:
                s.add(StudyRow(study_id=study_id(study), name=spec.name,
                               spec=spec.model_dump(mode="json"), budget=spec.budget))
        return self.summary(spec.name)

    def names(self) -> list[str]:
        """Every study, oldest first."""
        with self.db.session() as s:
            return list(s.scalars(select(StudyRow.name).order_by(StudyRow.created_at)).all())

    def summary(self, name: str) -> StudyPublic:
        row = self.row(name)
        active = self.active(row.study_id)
        trials = active.study.get_trials(deepcopy=False)
        best = None
        if any(t.state == TrialState.COMPLETE for t in trials):
            b = active.study.best_trial
            best = BestTrial(number=b.number, value=b.value, params=b.params)
        return StudyPublic(
            name=row.name, task=active.spec.task, direction=active.spec.direction,
            pruner=active.spec.pruner.name, shadow=active.spec.pruner.shadow,
            budget=row.budget, used=self.used(row.study_id), stopped=row.stopped,
            counts=dict(Counter(str(state_of(t)) for t in trials)), best=best,
            epochs_trained=sum(len(t.intermediate_values) for t in trials),
            created_at=row.created_at.isoformat())

    def stop(self, name: str) -> StudyPublic:
        """No new trial is leased; running trials finish."""
        row = self.row(name)
        with self.db.session() as s:
            s.get(StudyRow, row.study_id).stopped = True
        return self.summary(name)

    # ---- what the other parts use
    def row(self, name: str) -> StudyRow:
        with self.db.session() as s:
            row = s.scalar(select(StudyRow).where(StudyRow.name == name))
        if row is None:
            raise NotFound(f"no study named {name!r}")
        return row

    def open_rows(self) -> list[StudyRow]:
        """The studies not stopped, oldest first."""
        with self.db.session() as s:
            return list(s.scalars(select(StudyRow).where(StudyRow.stopped.is_(False))
                                  .order_by(StudyRow.created_at)).all())

    def used(self, sid: int) -> int:
        """Trials started against the budget: a retry replaces the trial it retries, so the
        leases of first runs."""
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(LeaseRow).where(
                LeaseRow.study_id == sid, LeaseRow.retry_of.is_(None)))

    def active(self, sid: int) -> ActiveStudy:
        with self._guard:
            lock = self._locks.setdefault(sid, threading.Lock())
        with lock:
            if sid in self._active:
                return self._active[sid]
            with self.db.session() as s:
                row = s.get(StudyRow, sid)
            spec = StudyCreate.model_validate(row.spec)
            latest = self.models.latest(sid)
            hooks = ServiceHooks(self._store, on_fit=self._persister(sid))
            pruner = build_pruner(spec, hooks, model=latest.blob if latest else None,
                                  pretrained=self.pretrained(spec))
            study = optuna.load_study(study_name=row.name, storage=self.storage,
                                      sampler=build_sampler(spec), pruner=pruner)
            active = ActiveStudy(study, spec, search_space(spec), task_settings(spec), pruner,
                                 self._cache_seconds)
            self._remember_stopped(active)
            self._active[sid] = active
            return active

    def loaded(self) -> Iterator[ActiveStudy]:
        """The studies this process has loaded."""
        yield from list(self._active.values())

    def pretrained(self, spec: StudyCreate) -> Pretrained | None:
        """The model and final values of the study ``pruner.settings.pretrained`` names."""
        try:
            source = pretrained_source(spec)
        except ValueError as e:
            raise Invalid(str(e)) from None
        if source is None:
            return None
        where = "pruner.settings.pretrained"
        with self.db.session() as s:
            row = s.scalar(select(StudyRow).where(StudyRow.name == source))
        if row is None:
            raise Invalid(f"{where}: no study named {source!r}")
        if row.spec["task"] != spec.task or row.spec["direction"] != spec.direction:
            raise Invalid(f"{where}: study {source!r} is a {row.spec['direction']} study of "
                          f"task {row.spec['task']!r}; this one is a {spec.direction} study "
                          f"of {spec.task!r}")
        latest = self.models.latest(row.study_id)
        if latest is None:
            raise Invalid(f"{where}: study {source!r} has no AeLLE model yet")
        values = [t.value for t in self.storage.get_all_trials(
            row.study_id, deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)]
        return Pretrained(source, latest.blob, values)

    def _persister(self, sid: int) -> Callable[[SpectrumPruner], None]:
        return lambda pruner: self.models.persist(sid, pruner)

    def _remember_stopped(self, active: ActiveStudy) -> None:
        """Tell a spectrum pruner the predictions it pruned trials on before this process
        started (its cut counts them)."""
        p = active.spectrum_pruner
        if p is None:
            return
        with self.db.session() as s:
            rows = s.execute(select(ReportRow.trial_id, ReportRow.prediction).where(
                ReportRow.study_id == active.id, ReportRow.decision == "prune",
                ReportRow.prediction.is_not(None))).all()
        for tid, prediction in rows:
            p.remember_stopped(tid, prediction)
