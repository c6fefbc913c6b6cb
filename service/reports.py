"""The report path and the results: one epoch's value and spectrum in, the pruner's decision
stored with it and answered; at the end, the trial's outcome told to Optuna."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from aelle.pruners import Decision, trial_marks
from service.api.schemas import Outcome, ReportPublic, ResultPublic
from service.db import REASON_LENGTH, Database, ReportRow, StoreError, pack_spectrum
from service.errors import Conflict, Invalid, Quarantined
from service.leases import LeaseBook, RunningTrial
from service.optuna_compat import requeue, trial_id
from service.specs import task_of
from service.studies import LATEST, OUTCOME, REASON, ActiveStudy, one_line, state_of

# how each outcome is told to Optuna, and the outcome attribute it leaves on the trial
_TOLD = {Outcome.PRUNED: (TrialState.PRUNED, None),
         Outcome.DIVERGED: (TrialState.PRUNED, "diverged"),
         Outcome.FAILED: (TrialState.FAIL, "failed")}


class Reports:
    def __init__(self, db: Database, storage: RDBStorage, leases: LeaseBook, max_retry: int):
        self.db, self.storage, self.leases = db, storage, leases
        self._max_retry = max_retry

    # ---- one epoch
    def report(self, tid: int, token: str, step: int, value: float,
               spectrum: list[float] | None) -> ReportPublic:
        """Store one epoch's value and spectrum, ask the pruner, and answer prune or continue
        (a repeated report of the same epoch gets the same answer)."""
        running, active = self.leases.verify(tid, token)
        z = self._check(active, running, step, value, spectrum)
        with running.lock:
            frozen = self.leases.frozen(running)
            old = self._replayed(frozen, tid, step, value, z)
            if old is not None:
                return old
            try:  # also the state check: a finished trial refuses the value
                self.storage.set_trial_intermediate_value(tid, step, value)
            except UpdateFinishedTrialError:
                t = self.storage.get_trial(tid)
                raise Conflict(f"trial {t.number} is {state_of(t)}: no more reports") from None
            frozen.intermediate_values = {**frozen.intermediate_values, step: value}
            decision = self._decide(active, frozen, z)
            # the last epoch has nothing left to save: the trial completes
            prune = decision.prune and step < active.settings["epochs"]
            row = _row(active, tid, step, value, z, decision, prune)
            try:
                with self.db.session() as s:  # a Core insert: the ORM's bookkeeping costs more
                    s.execute(insert(ReportRow), [row])
            except StoreError as e:
                if not isinstance(e.__cause__, IntegrityError):
                    raise
                # another coordinator process stored this epoch first (a worker's retry
                # reached it): the same report gets that answer, another one a conflict
                again = self._replayed(frozen, tid, step, value, z)
                if again is None:
                    raise
                return again
            # for optuna-dashboard and Optuna scripts: one attribute, overwritten each epoch
            self.storage.set_trial_user_attr(tid, LATEST, _latest(row))
            self.leases.beat(running)
            return _answer(ReportRow(**row))

    def _check(self, active: ActiveStudy, running: RunningTrial, step: int, value: float,
               spectrum: list[float] | None) -> np.ndarray | None:
        if not math.isfinite(value):
            raise Invalid(f"value must be finite, got {value} (report a diverged network as a "
                          "result with state 'diverged')")
        max_epochs = active.settings["epochs"]
        if step > max_epochs:
            raise Invalid(f"epoch {step} is beyond the study's {max_epochs} epochs per trial")
        if spectrum is None:
            return None
        z = np.asarray(spectrum, dtype=np.float64)
        if running.spectrum_size is None:
            params = self.leases.frozen(running).params
            try:
                running.spectrum_size = task_of(active.spec).spectrum_size(params,
                                                                           active.settings)
            except (ValueError, TypeError, KeyError) as e:
                # the trial's parameters fail the task's checks: the stored study is broken
                reason = f"a trial's parameters fail the task's checks: {one_line(e)}"
                self.leases.studies.quarantine(active.id, reason)
                raise Quarantined(f"study {active.spec.name!r} is quarantined: "
                                  f"{reason}") from None
        if running.spectrum_size is None:
            # a task this coordinator does not have: the trial's first spectrum fixes the size
            running.spectrum_size = self._stored_size(running.trial_id) or z.size
        if z.shape != (running.spectrum_size,):
            raise Invalid(f"spectrum has {z.size} exponents; this trial of "
                          f"{active.spec.name} reports {running.spectrum_size}")
        if not np.isfinite(z).all():
            raise Invalid("spectrum has non-finite exponents (report a diverged network "
                          "as a result with state 'diverged')")
        return z

    def _stored_size(self, tid: int) -> int | None:
        """How many exponents the trial's stored spectra have (another coordinator process, or
        this one before it restarted, took its first)."""
        with self.db.session() as s:
            return s.scalar(select(ReportRow.size).where(ReportRow.trial_id == tid,
                                                         ReportRow.spectrum.is_not(None))
                            .limit(1))

    def _replayed(self, frozen: FrozenTrial, tid: int, step: int, value: float,
                  z: np.ndarray | None) -> ReportPublic | None:
        """The stored answer to a report of this epoch, if it came before with the same
        values; Conflict if with others. A step the trial has not reported (Optuna's copy
        says) needs no look-up; the primary key still refuses a duplicate another coordinator
        process stored."""
        if step not in frozen.intermediate_values:
            return None
        with self.db.session() as s:
            old = s.get(ReportRow, (tid, step))
        if old is None:
            return None
        same = old.value == value and (
            (z is None and old.spectrum is None)
            or (z is not None and old.spectrum == pack_spectrum(z)))
        if not same:
            raise Conflict(f"epoch {step} of trial {tid} was already reported with other "
                           "values")
        return _answer(old)

    def _decide(self, active: ActiveStudy, frozen: FrozenTrial,
                z: np.ndarray | None) -> Decision:
        completed = active.completed()
        active.pruner.refresh(active.study, completed)  # a refit when due, in the background
        decision = active.pruner.decide(active.study, frozen, spectrum=z, completed=completed)
        # what later steps read back from the trial itself (the explore mark, shadow marks)
        for key, val in trial_marks(frozen, decision).items():
            self.storage.set_trial_user_attr(trial_id(frozen), key, val)
            frozen.set_user_attr(key, val)
        return decision

    # ---- the end of a trial
    def finish(self, tid: int, token: str, state: str, value: float | None,
               reason: str | None, retry: bool = False) -> ResultPublic:
        """The trial's outcome: complete (with its final value), pruned (after the coordinator
        said so), diverged (a non-finite loss or state) or failed (an error, with reason)."""
        try:
            outcome = Outcome(state)
        except ValueError:
            raise Invalid(f"state must be complete, pruned, diverged or failed, got "
                          f"{state!r}") from None
        running, active = self.leases.verify(tid, token)
        study = active.study
        with running.lock:
            trial = self.storage.get_trial(tid)
            if trial.state != TrialState.RUNNING:
                if state_of(trial) == outcome and (outcome != Outcome.COMPLETE
                                                   or trial.value == value):
                    # the same result again: idempotent, and it finishes the lease if the
                    # first attempt failed after telling Optuna
                    self.leases.close(tid)
                    return _result(trial)
                raise Conflict(f"trial {trial.number} is already {state_of(trial)}")
            if outcome == Outcome.COMPLETE and (value is None or not math.isfinite(value)):
                raise Invalid("a complete trial needs a finite value")
            retried = outcome == Outcome.FAILED and retry  # a retry screens it again
            with self.leases.ending(active, tid, plan=not retried):
                if outcome == Outcome.COMPLETE:
                    study.tell(trial.number, value)
                else:
                    self._tell_stopped(active, trial, outcome, reason)
                    if retried:
                        # the worker stopped, not the trial: run it again, same parameters
                        requeue(study, self.storage.get_trial(tid), self._max_retry)
                self.leases.close(tid)
        done = self.storage.get_trial(tid)
        if outcome == Outcome.FAILED:
            self.leases.studies.enforce_quotas(active)
        if outcome == Outcome.COMPLETE:
            active.add_completed(done)
            active.pruner.refresh(study)  # AeLLE: refits in the background
        return _result(done)

    def _tell_stopped(self, active: ActiveStudy, trial: FrozenTrial, outcome: Outcome,
                      reason: str | None) -> None:
        told, mark = _TOLD[outcome]
        tid = trial_id(trial)
        if mark is not None:
            self.storage.set_trial_user_attr(tid, OUTCOME, mark)
            reason = (reason or mark)[:REASON_LENGTH]
        else:  # pruned: the reason is the pruner's, from the last report
            reason = self._last_reason(tid)
        if reason:
            self.storage.set_trial_user_attr(tid, REASON, reason)
        active.study.tell(trial.number, state=told)

    def _last_reason(self, tid: int) -> str | None:
        with self.db.session() as s:
            last = select(func.max(ReportRow.step)).where(ReportRow.trial_id == tid)
            return s.scalar(select(ReportRow.reason).where(
                ReportRow.trial_id == tid, ReportRow.step == last.scalar_subquery()))


def _row(active: ActiveStudy, tid: int, step: int, value: float, z: np.ndarray | None,
         decision: Decision, prune: bool) -> dict:
    return {"trial_id": tid, "step": step, "study_id": active.id, "value": value,
            "spectrum": None if z is None else pack_spectrum(z),
            "size": 0 if z is None else z.size,
            "max_le": None if z is None else float(z.max()),
            "mean_le": None if z is None else float(z.mean()),
            "decision": "prune" if prune else "continue",
            "prediction": decision.prediction, "model": decision.model,
            "reason": _cut(decision.describe()), "created_at": dt.datetime.now(dt.UTC)}


def _latest(row: dict) -> dict:
    """The compact summary of a report kept on the Optuna trial."""
    def short(v):
        return None if v is None else round(v, 6)

    return {"epoch": row["step"], "max_le": short(row["max_le"]),
            "mean_le": short(row["mean_le"]), "prediction": short(row["prediction"]),
            "decision": row["decision"]}


def _cut(reason: str | None) -> str | None:
    return None if reason is None else reason[:REASON_LENGTH]


def _answer(row: ReportRow) -> ReportPublic:
    return ReportPublic(trial_id=row.trial_id, epoch=row.step, decision=row.decision,
                        prediction=row.prediction, model=row.model, reason=row.reason)


def _result(trial: FrozenTrial) -> ResultPublic:
    return ResultPublic(trial_id=trial_id(trial), number=trial.number, state=state_of(trial),
                        value=trial.value)
