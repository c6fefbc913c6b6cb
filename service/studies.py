"""Studies: create, list, show, stop; and each study as this process uses it (Optuna's handle,
what its spec builds, its completed trials for the pruner)."""

from __future__ import annotations

import logging
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
from sqlalchemy import func, select, update

from aelle.pruners import ATTR, RERUN, DecidingPruner, SpectrumPruner
from service.api.schemas import BestTrial, StudyPublic
from service.api.schemas import TrialState as State
from service.db import REASON_LENGTH, Database, LeaseRow, ReportRow, StudyRow, is_database_error
from service.errors import Conflict, Invalid, NotFound, Quarantined
from service.model_store import ModelStore
from service.optuna_compat import study_id
from service.pruning import (
    Pretrained,
    ServiceHooks,
    build_pruner,
    build_sampler,
    pretrained_source,
    run_settings,
    validate,
    with_default_plan,
)
from service.specs import StudyCreate, search_space, task_version
from service.spectrum_store import ReportSpectrumStore

log = logging.getLogger("aelle.service")

OUTCOME = f"{ATTR}outcome"  # a trial attribute: "diverged" or "failed"
REASON = f"{ATTR}reason"    # a trial attribute: why it was pruned, diverged or failed
LATEST = f"{ATTR}latest"    # a trial attribute: the last report's LE summary and decision

_STATES = {TrialState.RUNNING: State.RUNNING, TrialState.WAITING: State.WAITING,
           TrialState.COMPLETE: State.COMPLETE, TrialState.PRUNED: State.PRUNED,
           TrialState.FAIL: State.FAILED}


def state_of(t: FrozenTrial) -> State:
    """A trial's state as the API names it: a diverged network is its own state (Optuna
    holds it as pruned)."""
    if t.state == TrialState.PRUNED and t.user_attrs.get(OUTCOME) == "diverged":
        return State.DIVERGED
    return _STATES[t.state]


def run_again(t: FrozenTrial) -> int | None:
    """The trial number a trial runs again: the failed trial of a retry, the screened trial of
    a planned screen's finalist."""
    return t.system_attrs.get("failed_trial", t.user_attrs.get(RERUN))


def spent(row: StudyRow, used: int, epochs_used: int) -> bool:
    """The budget rule: no new trial once ``used`` trials started or, with an epoch budget,
    ``epochs_used`` epochs were trained."""
    return used >= row.budget or (row.budget_epochs is not None
                                  and epochs_used >= row.budget_epochs)


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
        spec = with_default_plan(spec)
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
            try:
                # for optuna-dashboard and Optuna scripts reading the same database
                study.set_user_attr(f"{ATTR}task", spec.task)
                study.set_user_attr(f"{ATTR}pruner", spec.pruner.name)
                with self.db.session() as s:
                    s.add(StudyRow(study_id=study_id(study), name=spec.name,
                                   spec=spec.model_dump(mode="json"), budget=spec.budget,
                                   budget_epochs=spec.budget_epochs,
                                   task_version=task_version(spec)))
            except BaseException:
                # the two writes are one: without our row, Optuna's study goes too (a study
                # left in Optuna's tables alone would take the name)
                try:
                    optuna.delete_study(study_name=spec.name, storage=self.storage)
                except Exception:
                    log.exception("study %r: its Optuna study could not be deleted after a "
                                  "failed create", spec.name)
                raise
        return self.summary(spec.name)

    def names(self, limit: int | None = None, offset: int = 0) -> list[str]:
        """The studies, oldest first (``limit`` of them from ``offset``; all by default)."""
        with self.db.session() as s:
            q = select(StudyRow.name).order_by(StudyRow.created_at, StudyRow.study_id)
            if offset:
                q = q.offset(offset)
            if limit is not None:
                q = q.limit(limit)
            return list(s.scalars(q).all())

    def count(self) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(StudyRow))

    def summary(self, name: str) -> StudyPublic:
        row = self.row(name)
        if row.quarantine is None:
            try:
                return self._summary(row)
            except Quarantined:
                row = self.row(name)
            except Exception as e:
                if is_database_error(e):
                    raise
                self.quarantine(row.study_id, f"its summary failed: {one_line(e)}")
                row = self.row(name)
        return self._quarantined_summary(row)

    def _summary(self, row: StudyRow) -> StudyPublic:
        active = self.active(row.study_id)
        trials = active.study.get_trials(deepcopy=False)
        best = None
        if any(t.state == TrialState.COMPLETE for t in trials):
            b = active.study.best_trial
            best = BestTrial(number=b.number, value=b.value, params=b.params)
        return StudyPublic(
            name=row.name, task=active.spec.task, task_version=row.task_version,
            direction=active.spec.direction,
            pruner=active.spec.pruner.name, shadow=active.spec.pruner.shadow,
            stopped=row.stopped, **self._budget(row),
            counts=dict(Counter(str(state_of(t)) for t in trials)), best=best,
            epochs_trained=sum(len(t.intermediate_values) for t in trials),
            epochs_per_trial=active.settings["epochs"],
            epochs_saved=epochs_saved(trials, active.settings["epochs"]),
            created_at=row.created_at.isoformat(), stop_reason=row.stop_reason)

    def _quarantined_summary(self, row: StudyRow) -> StudyPublic:
        """What can be said of a quarantined study from its row and whatever of its trials
        Optuna still holds."""
        spec = row.spec if isinstance(row.spec, dict) else {}
        pruner = spec.get("pruner") if isinstance(spec.get("pruner"), dict) else {}
        try:
            trials = self.storage.get_all_trials(row.study_id, deepcopy=False)
        except Exception as e:
            if is_database_error(e):
                raise
            trials = []
        return StudyPublic(
            name=row.name, task=str(spec.get("task", "")), task_version=row.task_version,
            direction=str(spec.get("direction", "")), pruner=str(pruner.get("name", "")),
            shadow=bool(pruner.get("shadow", False)), stopped=True, **self._budget(row),
            counts=dict(Counter(str(state_of(t)) for t in trials)), best=None,
            epochs_trained=sum(len(t.intermediate_values) for t in trials),
            created_at=row.created_at.isoformat(), quarantine=row.quarantine,
            stop_reason=row.stop_reason)

    def quarantine(self, sid: int, reason: str) -> None:
        """Serve the study no more: leases skip it, its summary says why; other studies are
        untouched. Logged once, when it is first quarantined."""
        reason = reason[:REASON_LENGTH]
        with self.db.session() as s:
            changed = s.execute(update(StudyRow).where(StudyRow.study_id == sid,
                                                       StudyRow.quarantine.is_(None))
                                .values(quarantine=reason)).rowcount
        with self._guard:
            self._active.pop(sid, None)
        if changed:
            log.error("study %d quarantined: %s", sid, reason)

    def enforce_quotas(self, active: ActiveStudy) -> None:
        """Stop the study, saying why, once too many of its trials failed for good (an error,
        or retries spent) or were queued again: a study whose trials cannot run must not
        hold the workers, nor fail its whole budget."""
        trials = active.study.get_trials(deepcopy=False)
        # a queued retry names every trial it runs again (Optuna's retry_history)
        again = [t.system_attrs.get("retry_history") or [] for t in trials]
        retried = {number for history in again for number in history}
        failed = sum(t.state == TrialState.FAIL and t.number not in retried for t in trials)
        retries = sum(bool(history) for history in again)
        spec = active.spec
        if failed >= spec.max_failed:
            self.stop_with(active.id, f"{failed} trials failed (max_failed {spec.max_failed})")
        elif retries > spec.max_retries:
            self.stop_with(active.id, f"{retries} trials were queued again "
                           f"(max_retries {spec.max_retries})")

    def stop_with(self, sid: int, reason: str) -> None:
        """Lease no more trials of the study, saying why (a quota was reached)."""
        with self.db.session() as s:
            changed = s.execute(update(StudyRow).where(StudyRow.study_id == sid,
                                                       StudyRow.stopped.is_(False))
                                .values(stopped=True, stop_reason=reason[:REASON_LENGTH])
                                ).rowcount
        if changed:
            log.warning("study %d stopped: %s", sid, reason)

    def unload(self, sid: int) -> None:
        """This process forgets the study (it is being deleted), once its model fit ended."""
        with self._guard:
            active = self._active.pop(sid, None)
        if active is not None and active.spectrum_pruner is not None:
            active.spectrum_pruner.wait(30.0)

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

    def trial(self, name: str, number: int) -> tuple[ActiveStudy, FrozenTrial]:
        """The study and its trial ``number``; NotFound naming which is missing."""
        active = self.active(self.row(name).study_id)
        found = [t for t in active.study.get_trials(deepcopy=False) if t.number == number]
        if not found:
            raise NotFound(f"study {name!r} has no trial {number}")
        return active, found[0]

    def open_rows(self) -> list[StudyRow]:
        """The studies not stopped nor quarantined, oldest first."""
        with self.db.session() as s:
            return list(s.scalars(select(StudyRow).where(StudyRow.stopped.is_(False),
                                                         StudyRow.quarantine.is_(None))
                                  .order_by(StudyRow.created_at)).all())

    def open_row(self, sid: int) -> StudyRow | None:
        """The study's row if it is neither stopped nor quarantined."""
        with self.db.session() as s:
            return s.scalar(select(StudyRow).where(StudyRow.study_id == sid,
                                                   StudyRow.stopped.is_(False),
                                                   StudyRow.quarantine.is_(None)))

    def _budget(self, row: StudyRow) -> dict:
        used, epochs = self.used(row.study_id), self.epochs_used(row.study_id)
        return dict(budget=row.budget, used=used, budget_epochs=row.budget_epochs,
                    epochs_used=epochs, spent=spent(row, used, epochs))

    def epochs_used(self, sid: int) -> int:
        """Epochs the study's trials trained, retries included: their reports past step 0 (the
        untrained network's)."""
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(ReportRow).where(
                ReportRow.study_id == sid, ReportRow.step > 0))

    def spent(self, row: StudyRow) -> bool:
        """No new trial of the study may start: its trial budget or its epoch budget is used
        up."""
        return spent(row, self.used(row.study_id),
                     0 if row.budget_epochs is None else self.epochs_used(row.study_id))

    def used(self, sid: int) -> int:
        """Trials started against the budget: a retry replaces the trial it retries, so the
        leases of first runs."""
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(LeaseRow).where(
                LeaseRow.study_id == sid, LeaseRow.retry_of.is_(None)))

    def active(self, sid: int) -> ActiveStudy:
        """The study as this process uses it, built from its stored spec when first used. A
        study that cannot be built (a spec stored before a check existed, its Optuna study
        deleted outside the coordinator) is quarantined: Quarantined, here and from then on;
        a database error is only raised."""
        with self._guard:
            lock = self._locks.setdefault(sid, threading.Lock())
        with lock:
            if sid in self._active:
                return self._active[sid]
            with self.db.session() as s:
                row = s.get(StudyRow, sid)
            if row is None:
                raise NotFound(f"no study with id {sid}")
            if row.quarantine is not None:
                raise Quarantined(f"study {row.name!r} is quarantined: {row.quarantine}")
            try:
                active = self._build(row)
            except Exception as e:
                if is_database_error(e):
                    raise
                reason = ("its Optuna study was deleted outside the coordinator"
                          if isinstance(e, KeyError) else f"it cannot be loaded: {one_line(e)}")
                self.quarantine(sid, reason)
                raise Quarantined(f"study {row.name!r} is quarantined: {reason}") from None
            self._active[sid] = active
            return active

    def _build(self, row: StudyRow) -> ActiveStudy:
        """What the study's stored spec builds, every check of a new spec passed again."""
        sid = row.study_id
        spec = StudyCreate.model_validate(row.spec)
        validate(spec, self.pretrained(spec))
        latest = self.models.latest(sid)
        hooks = ServiceHooks(self._store, on_fit=self._persister(sid))
        pruner = build_pruner(spec, hooks, model=latest.blob if latest else None,
                              pretrained=self.pretrained(spec))
        study = optuna.load_study(study_name=row.name, storage=self.storage,
                                  sampler=build_sampler(spec), pruner=pruner)
        active = ActiveStudy(study, spec, search_space(spec), run_settings(spec, pruner), pruner,
                             self._cache_seconds)
        self._remember_stopped(active)
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


def epochs_saved(trials: list[FrozenTrial], epochs: int) -> int:
    """The epochs the pruned and diverged trials did not train (a trial reports epochs 0 to
    ``epochs``): the compute pruning saved. Failed trials are left out: their retries run; so
    are the screened configurations a planned screen's finalists run again."""
    again = {t.user_attrs[RERUN] for t in trials if RERUN in t.user_attrs}
    return sum(max(0, epochs + 1 - len(t.intermediate_values)) for t in trials
               if t.state == TrialState.PRUNED and t.number not in again)


def one_line(e: BaseException) -> str:
    """An error as one line for a stored reason."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return f"{type(e).__name__}: {text}".splitlines()[0] if text else type(e).__name__
