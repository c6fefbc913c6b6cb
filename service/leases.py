"""Leases: which worker runs which trial, with budgets exact under concurrency; heartbeats;
and the sweep that fails trials whose worker went silent (Optuna queues their retries).

Each running trial this process knows of is one :class:`RunningTrial`, evicted with its lock
when the trial stops running."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import delete, func, insert, select, update

from aelle.pruners import seed_of
from service.api.schemas import HeartbeatPublic, LeasePublic
from service.api.schemas import TrialState as State
from service.db import (
    REASON_LENGTH,
    TASK_VERSION_LENGTH,
    WORKER_NAME_LENGTH,
    ArtifactRow,
    Database,
    LeaseRow,
    ReportRow,
    StudyRow,
    is_database_error,
)
from service.errors import Conflict, NotFound, Quarantined
from service.finalists import planned_screen, queue_due
from service.optuna_compat import ask, fail_abandoned, fail_stale, frozen_of, orphans, trial_id
from service.specs import task_of
from service.studies import (
    OUTCOME,
    REASON,
    ActiveStudy,
    StudyCatalog,
    one_line,
    run_again,
    state_of,
)

log = logging.getLogger("aelle.service")


@dataclass
class RunningTrial:
    """A leased trial as this process tracks it."""

    trial_id: int
    study_id: int
    token: str
    frozen: FrozenTrial | None = None    # kept up to date by its reports (cheaper than a read)
    last_beat: float = -1e9              # when a heartbeat was last recorded (monotonic)
    spectrum_size: int | None = None     # the exponents its reports carry
    lock: threading.Lock = field(default_factory=threading.Lock)


class LeaseBook:
    def __init__(self, db: Database, storage: RDBStorage, studies: StudyCatalog,
                 heartbeat_interval: int, grace_period: float = 60.0, max_retry: int = 3):
        self.db, self.storage, self.studies = db, storage, studies
        self._interval = heartbeat_interval
        self._grace = grace_period
        self._max_retry = max_retry
        self._orphans_due = 0.0  # when the sweep next looks for trials without a lease
        self._running: dict[int, RunningTrial] = {}
        self._study_locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self._exhausted: set[int] = set()  # studies whose budget is spent, nothing running

    # ---- leasing
    def lease(self, worker: str, tasks: list[str] | None = None,
              versions: dict[str, str] | None = None) -> LeasePublic | None:
        """A trial to run, from the oldest active study with budget left (of one of ``tasks``,
        when the worker names the tasks it can run, and of the same task version, when it
        names its versions); None: no work. A study that fails for a reason other than the
        database is quarantined and skipped: the others keep leasing."""
        for row in self.studies.open_rows():
            if row.study_id in self._exhausted:
                continue
            if tasks is not None and _task(row) not in tasks:
                continue
            if versions and _task(row) in versions and \
                    self._version(row, versions[_task(row)]) != versions[_task(row)]:
                continue
            try:
                got = self._lease_from(row, worker)
            except Quarantined:
                continue
            except Exception as e:
                if is_database_error(e):
                    raise
                log.exception("study %r: leasing failed", row.name)
                self.studies.quarantine(row.study_id, f"leasing failed: {one_line(e)}")
                continue
            if got is not None:
                return got
        return None

    def _version(self, row: StudyRow, offered: str) -> str:
        """The study's task version; a study without one takes ``offered`` (the first worker's
        that asks: one conditional update, so that coordinator processes agree)."""
        if row.task_version is not None:
            return row.task_version
        with self.db.session() as s:
            s.execute(update(StudyRow).where(StudyRow.study_id == row.study_id,
                                             StudyRow.task_version.is_(None))
                      .values(task_version=offered[:TASK_VERSION_LENGTH]))
            row.task_version = s.scalar(select(StudyRow.task_version)
                                        .where(StudyRow.study_id == row.study_id))
        log.info("study %r: runs version %s of task %r", row.name, row.task_version, _task(row))
        return row.task_version

    def _lease_from(self, row: StudyRow, worker: str) -> LeasePublic | None:
        active = self.studies.active(row.study_id)
        # Budgets hold across threads (lock) and coordinator processes (advisory lock). Only
        # the count and the new trial are made under the locks; sampling the parameters (TPE
        # reads the study's trials) happens outside, so that leases do not queue behind it.
        with self._study_lock(row.study_id), self.db.advisory_lock(row.study_id):
            waiting = self._waiting(row.study_id)
            if not waiting and self.studies.spent(row):
                if self._open_leases(row.study_id):
                    return None
                # Nothing runs. Retries come from running trials and are queued before their
                # lease closes, so one queued meanwhile is seen now, and so are the finalists
                # of a planned screen that is over; without one the study never has work again
                # (no process starts a trial past the budget): later leases skip it without a
                # query.
                self._queue_finalists(row, active)
                waiting = self._waiting(row.study_id)
                if not waiting:
                    self._exhausted.add(row.study_id)
                    return None
            trial = ask(active.study)
            tid = trial_id(trial)
            token = secrets.token_hex(16)
            try:
                self.storage.record_heartbeat(tid)
                retry_of = run_again(self.storage.get_trial(tid)) if waiting else None
                with self.db.session() as s:  # every lease is a new trial: a plain insert
                    # Optuna's id is new to Optuna, but SQLite gives a deleted trial's id out
                    # again: rows left by a study deleted outside the coordinator are stale
                    s.execute(delete(ReportRow).where(ReportRow.trial_id == tid))
                    s.execute(delete(LeaseRow).where(LeaseRow.trial_id == tid))
                    s.execute(delete(ArtifactRow).where(ArtifactRow.trial_id == tid))
                    s.execute(insert(LeaseRow), [{
                        "trial_id": tid, "study_id": row.study_id, "token": token,
                        "worker": worker[:WORKER_NAME_LENGTH],
                        "leased_at": dt.datetime.now(dt.UTC), "retry_of": retry_of}])
            except BaseException:
                # no lease row, no trial: a running trial without one would never be swept
                # (and the budget, which counts leases, would be overrun by it)
                self._abandon(active, tid, "its lease could not be stored")
                raise
            running = RunningTrial(tid, row.study_id, token, last_beat=time.monotonic())
            with self._guard:
                self._running[tid] = running
        try:
            params = task_of(active.spec).suggest(trial, active.space)
            running.frozen = frozen_of(trial)
        except Exception as e:
            if not is_database_error(e):
                # the study's space cannot be sampled: the trial never ran, so it takes no
                # budget (its lease goes) and the study is quarantined by the caller
                self._abandon(active, tid, f"its parameters could not be sampled: {one_line(e)}",
                              lease=True)
            raise
        return LeasePublic(study=row.name, trial_id=tid, number=trial.number,
                           task=active.spec.task, params=params, settings=active.settings,
                           token=token, heartbeat_interval=self._interval, retry_of=retry_of,
                           task_version=row.task_version, seed=seed_of(running.frozen))

    def _queue_finalists(self, row: StudyRow, active: ActiveStudy) -> None:
        """A planned screen that is over (the caller holds the study's locks, its budget is
        spent and nothing of it runs): its finalists due, queued."""
        pruner = planned_screen(active.pruner)
        if pruner is None:
            return
        epochs = 0 if row.budget_epochs is None else self.studies.epochs_used(row.study_id)
        chosen = queue_due(active.study, pruner, row, active.settings["epochs"], epochs)
        if chosen:
            log.info("study %r: screened, runs again %s", row.name,
                     ", ".join(map(str, chosen)))

    @contextlib.contextmanager
    def ending(self, active: ActiveStudy, tid: int, plan: bool = True) -> Iterator[None]:
        """Around telling Optuna that trial ``tid`` stopped and closing its lease. In a planned
        screen it holds the study's locks, so that the trials ending together see each other,
        and, with ``plan``, if this is the screen's end, queues its finalists first: the study
        never looks finished between its screen and them."""
        if planned_screen(active.pruner) is None:
            yield
            return
        with self._study_lock(active.id), self.db.advisory_lock(active.id):
            if plan:
                self._plan_locked(active, besides=tid)
            yield

    def finishing(self, active: ActiveStudy) -> None:
        """Trials of the study stopped (the sweep failed them): if that ended a planned screen,
        queue its finalists."""
        if planned_screen(active.pruner) is not None:
            with self._study_lock(active.id), self.db.advisory_lock(active.id):
                self._plan_locked(active)

    def _plan_locked(self, active: ActiveStudy, besides: int | None = None) -> None:
        """Queue a planned screen's finalists if its screen is over: the study is open, its
        budget spent, nothing of it runs (but trial ``besides``) or waits. A stopped study
        queues them when resumed, at its next lease."""
        row = self.studies.open_row(active.id)
        if row is not None and self.studies.spent(row) \
                and not self._open_leases(active.id, besides=besides) \
                and not self._waiting(active.id):
            self._queue_finalists(row, active)
            self.reopen(active.id)

    def _abandon(self, active: ActiveStudy, tid: int, reason: str, lease: bool = False) -> None:
        """A trial that was asked for but never handed out: failed, with the reason (a retry is
        queued again, so that its parameters still run), its lease deleted with ``lease``.
        Best effort: when the database is what failed, the sweep finds the trial later (a
        running trial without a lease)."""
        try:
            if lease:
                with self.db.session() as s:
                    s.execute(delete(LeaseRow).where(LeaseRow.trial_id == tid))
            self._forget(tid)
            self.storage.set_trial_user_attr(tid, OUTCOME, "failed")
            self.storage.set_trial_user_attr(tid, REASON, reason[:REASON_LENGTH])
            fail_abandoned(active.study, tid, self._max_retry)
        except Exception:
            log.warning("trial %d: could not be failed now (%s); the sweep will", tid, reason)

    def _study_lock(self, sid: int) -> threading.Lock:
        with self._guard:
            return self._study_locks.setdefault(sid, threading.Lock())

    def _waiting(self, sid: int) -> list[FrozenTrial]:
        return self.storage.get_all_trials(sid, deepcopy=False, states=(TrialState.WAITING,))

    def _open_leases(self, sid: int, besides: int | None = None) -> int:
        """The study's open leases (but trial ``besides``'s)."""
        query = select(func.count()).select_from(LeaseRow).where(
            LeaseRow.study_id == sid, LeaseRow.finished_at.is_(None))
        if besides is not None:
            query = query.where(LeaseRow.trial_id != besides)
        with self.db.session() as s:
            return s.scalar(query)

    # ---- what the study's lifecycle needs
    @contextlib.contextmanager
    def holding(self, sid: int) -> Iterator[None]:
        """No lease of the study starts while this is held (this process and others)."""
        with self._study_lock(sid), self.db.advisory_lock(sid):
            yield

    def running_count(self, sid: int) -> int:
        return self._open_leases(sid)

    def reopen(self, sid: int) -> None:
        """The study may have work again (its budget was raised, trials were queued)."""
        self._exhausted.discard(sid)

    # ---- a lease in use
    def verify(self, tid: int, token: str) -> tuple[RunningTrial, ActiveStudy]:
        """The trial whose lease ``token`` is, and its study. An open lease is tracked from
        then on (a trial's token never changes); a finished one is not (Optuna's storage
        refuses what comes late)."""
        with self._guard:
            running = self._running.get(tid)
        if running is None:
            with self.db.session() as s:
                lease = s.get(LeaseRow, tid)
            if lease is None:
                raise NotFound(f"trial {tid} was never leased")
            running = RunningTrial(tid, lease.study_id, lease.token)
            if lease.finished_at is None:
                with self._guard:
                    running = self._running.setdefault(tid, running)
        if not secrets.compare_digest(running.token.encode(), token.encode()):
            raise Conflict(f"trial {tid}: this lease is not the trial's current lease")
        return running, self.studies.active(running.study_id)

    def frozen(self, running: RunningTrial) -> FrozenTrial:
        if running.frozen is None:
            running.frozen = self.storage.get_trial(running.trial_id)
        return running.frozen

    def heartbeat(self, tid: int, token: str) -> HeartbeatPublic:
        self.verify(tid, token)
        trial = self.storage.get_trial(tid)
        if trial.state != TrialState.RUNNING:
            raise Conflict(f"trial {tid} is {state_of(trial)}: stop working on it")
        self.storage.record_heartbeat(tid)
        return HeartbeatPublic(trial_id=tid, state=State.RUNNING)

    def beat(self, running: RunningTrial) -> None:
        """A report is a sign of life: record it as a heartbeat, at most twice an interval."""
        now = time.monotonic()
        if now - running.last_beat >= self._interval / 2:
            self.storage.record_heartbeat(running.trial_id)
            running.last_beat = now

    def close(self, tid: int) -> None:
        """The trial stopped running: its lease is finished and this process forgets it."""
        with self.db.session() as s:
            s.execute(update(LeaseRow).where(LeaseRow.trial_id == tid,
                                             LeaseRow.finished_at.is_(None))
                      .values(finished_at=dt.datetime.now(dt.UTC)))
        self._forget(tid)

    def _forget(self, tid: int) -> None:
        with self._guard:
            self._running.pop(tid, None)

    def tracked(self, tid: int) -> bool:
        """This process tracks the trial as running."""
        with self._guard:
            return tid in self._running

    # ---- the stale-trial sweep
    def sweep(self) -> int:
        """Fail the running trials whose heartbeat is stale (their retries are queued by
        Optuna's callback); returns how many were failed.

        Only studies with open leases are visited (a running trial always has one), so the
        cost follows the work in flight, not every study the database ever held; a lease whose
        trial stopped running is closed, and the trial is forgotten."""
        with self.db.session() as s:
            open_leases = s.execute(select(LeaseRow.study_id, LeaseRow.trial_id)
                                    .where(LeaseRow.finished_at.is_(None))).all()
        by_study: dict[int, set[int]] = defaultdict(set)
        for sid, tid in open_leases:
            by_study[sid].add(tid)
        failed = self._sweep_orphans()
        for sid, tids in by_study.items():
            try:
                fail_stale(self.studies.active(sid).study)
                running = {trial_id(t) for t in self.storage.get_all_trials(
                    sid, deepcopy=False, states=(TrialState.RUNNING,))}
            except Exception as e:
                if is_database_error(e):
                    raise
                # quarantined, or its trials gone (deleted outside the coordinator): nothing
                # of it runs any more
                running = set()
            ended = tids - running
            if not ended:
                continue
            # stale-failed here or in a pass that stopped before this point; a trial whose
            # result was posted meanwhile closes its own lease and is not counted
            stale = sum(_state(self.storage, t) == TrialState.FAIL for t in ended)
            failed += stale
            if stale and sid in {a.id for a in self.studies.loaded()}:
                self.studies.enforce_quotas(self.studies.active(sid))
            with self.db.session() as s:
                s.execute(update(LeaseRow).where(LeaseRow.trial_id.in_(ended),
                                                 LeaseRow.finished_at.is_(None))
                          .values(finished_at=dt.datetime.now(dt.UTC)))
            for tid in ended:
                self._forget(tid)
            with contextlib.suppress(Quarantined):
                self.finishing(self.studies.active(sid))
        if failed:
            log.info("failed %d stale trial(s); retries queued", failed)
        return failed

    def _sweep_orphans(self) -> int:
        """Fail the running trials of our studies that have no lease and are older than the
        grace period: asked for by a lease whose row was never stored (the database failed in
        between, or the coordinator stopped). A retry among them is queued again."""
        now = time.monotonic()
        if now < self._orphans_due:
            return 0
        self._orphans_due = now + self._grace
        failed = 0
        for sid, tid in orphans(self.db.engine, self._grace):
            try:
                active = self.studies.active(sid)
            except Exception as e:
                if is_database_error(e):
                    raise
                continue
            self.storage.set_trial_user_attr(tid, OUTCOME, "failed")
            self.storage.set_trial_user_attr(tid, REASON, "its lease was never stored")
            if fail_abandoned(active.study, tid, self._max_retry):
                failed += 1
        if failed:
            log.warning("failed %d running trial(s) without a lease", failed)
        return failed


def _task(row: StudyRow) -> str | None:
    return row.spec.get("task") if isinstance(row.spec, dict) else None


def _state(storage: RDBStorage, tid: int) -> TrialState | None:
    try:
        return storage.get_trial(tid).state
    except KeyError:  # deleted outside the coordinator
        return None
