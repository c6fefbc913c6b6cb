"""A study's life after it is created: delete it, resume it once stopped, raise its budget,
queue its failed trials again. Each refuses (Conflict) what the study's state forbids."""

from __future__ import annotations

import logging

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from pydantic import BaseModel
from sqlalchemy import delete, select, update

from service.api.schemas import StudyPublic
from service.artifacts import Artifacts
from service.db import Database, LeaseRow, ModelRow, ReportRow, StudyRow
from service.errors import Conflict, Invalid, Quarantined
from service.explains import Explains
from service.leases import LeaseBook
from service.optuna_compat import requeue
from service.studies import StudyCatalog

log = logging.getLogger("aelle.service")


class StudyDeleted(BaseModel):
    name: str
    trials: int
    artifacts: int
    explains: int


class Requeued(BaseModel):
    requeued: list[int]
    study: StudyPublic


class Lifecycle:
    def __init__(self, db: Database, storage: RDBStorage, studies: StudyCatalog,
                 leases: LeaseBook, artifacts: Artifacts, explains: Explains):
        self.db, self.storage, self.studies = db, storage, studies
        self.leases, self.artifacts, self.explains = leases, artifacts, explains

    def delete(self, name: str) -> StudyDeleted:
        """The study, its trials, reports, leases, AeLLE models, networks and explanations,
        gone. Refused while trials run, or while another study takes its AeLLE model as
        pretrained."""
        row = self.studies.row(name)
        sid = row.study_id
        users = self._pretrained_users(name)
        if users:
            raise Conflict(f"study {name!r} is the pretrained model of {', '.join(users)}: "
                           "delete those first")
        with self.leases.holding(sid):
            running = self.leases.running_count(sid)
            if running:
                raise Conflict(f"study {name!r} has {running} running trial(s): stop it "
                               "(POST .../stop) and let them finish before deleting it")
            with self.db.session() as s:  # no lease starts from here on
                s.execute(update(StudyRow).where(StudyRow.study_id == sid).values(stopped=True))
            self.studies.unload(sid)
            trials = len(self.storage.get_all_trials(sid, deepcopy=False)) \
                if self._optuna_has(sid) else 0
            artifacts = self.artifacts.drop_study(sid)
            explains = self.explains.drop_study(sid)
            # Optuna's study first: a delete that stops after it leaves our row alone, which
            # a second delete finishes (the other way round, the name would stay taken)
            if self._optuna_has(sid):
                optuna.delete_study(study_name=name, storage=self.storage)
            with self.db.session() as s:
                for table in (ReportRow, LeaseRow, ModelRow):
                    s.execute(delete(table).where(table.study_id == sid))
                s.execute(delete(StudyRow).where(StudyRow.study_id == sid))
            self.leases.reopen(sid)
        log.info("study %r deleted (%d trials, %d networks, %d explanations)", name, trials,
                 artifacts, explains)
        return StudyDeleted(name=name, trials=trials, artifacts=artifacts, explains=explains)

    def resume(self, name: str) -> StudyPublic:
        """Lease its trials again, after a stop (the user's, or a quota's)."""
        row = self._served(name)
        if not row.stopped:
            raise Conflict(f"study {name!r} is not stopped")
        with self.db.session() as s:
            s.execute(update(StudyRow).where(StudyRow.study_id == row.study_id)
                      .values(stopped=False, stop_reason=None))
        self.leases.reopen(row.study_id)
        return self.studies.summary(name)

    def raise_budget(self, name: str, budget: int | None = None,
                     budget_epochs: int | None = None) -> StudyPublic:
        """Raise the trial budget, the epoch budget or both; each one given must be above the
        study's (a study without an epoch budget has no ceiling to raise)."""
        row = self._served(name)
        if budget is None and budget_epochs is None:
            raise Invalid("give a new budget: budget (trials), budget_epochs, or both")
        if budget is not None and budget <= row.budget:
            raise Invalid(f"budget {budget} does not raise study {name!r}'s budget of "
                          f"{row.budget}")
        if budget_epochs is not None:
            if row.budget_epochs is None:
                raise Invalid(f"study {name!r} has no epoch budget to raise: only its trial "
                              "budget bounds it")
            if budget_epochs <= row.budget_epochs:
                raise Invalid(f"budget_epochs {budget_epochs} does not raise study {name!r}'s "
                              f"epoch budget of {row.budget_epochs}")
        values = {k: v for k, v in (("budget", budget), ("budget_epochs", budget_epochs))
                  if v is not None}
        with self.db.session() as s:
            s.execute(update(StudyRow).where(StudyRow.study_id == row.study_id)
                      .values(**values))
        self.leases.reopen(row.study_id)
        return self.studies.summary(name)

    def requeue_failed(self, name: str) -> Requeued:
        """Queue every failed trial not yet run again, with its parameters (the retries
        replace them: they take no budget). A stopped study stays stopped until resumed."""
        row = self._served(name)
        active = self.studies.active(row.study_id)
        with self.leases.holding(row.study_id):
            trials = active.study.get_trials(deepcopy=False)
            retried = {n for t in trials for n in t.system_attrs.get("retry_history") or []}
            failed = [t for t in trials
                      if t.state == TrialState.FAIL and t.number not in retried]
            for t in failed:
                requeue(active.study, t, max_retry=None)
        self.leases.reopen(row.study_id)
        return Requeued(requeued=[t.number for t in failed], study=self.studies.summary(name))

    def _served(self, name: str) -> StudyRow:
        row = self.studies.row(name)
        if row.quarantine is not None:
            raise Quarantined(f"study {name!r} is quarantined: {row.quarantine}")
        return row

    def _optuna_has(self, sid: int) -> bool:
        try:
            self.storage.get_study_name_from_id(sid)
        except KeyError:
            return False
        return True

    def _pretrained_users(self, name: str) -> list[str]:
        with self.db.session() as s:
            rows = s.execute(select(StudyRow.name, StudyRow.spec)).all()
        users = []
        for other, spec in rows:
            pruner = spec.get("pruner") if isinstance(spec, dict) else None
            settings = pruner.get("settings") if isinstance(pruner, dict) else None
            if isinstance(settings, dict) and settings.get("pretrained") == name \
                    and other != name:
                users.append(other)
        return users
