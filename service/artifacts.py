"""Trained networks: a worker uploads a trial's network (:mod:`tasks.artifacts`) before it
posts the result; the coordinator checks it, stores it through Optuna's artifact API, serves
it back, and keeps only those of each study's best ``artifacts_kept`` completed trials.

What is stored never breaks: an upload is read whole and checked (its digest, that it is a
trial model of this very trial) before anything is written; it is written under a new id
and only then recorded in ``aelle_artifacts``, the one place that says which network a
trial has. A failed write leaves the trial as it was; the same upload again answers what was
stored, another one for the same trial is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from optuna.artifacts import Boto3ArtifactStore, FileSystemArtifactStore, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from pydantic import BaseModel
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from service.config import ServiceSettings
from service.db import ArtifactRow, Database, LeaseRow, StoreError
from service.errors import Conflict, Invalid, NotFound
from service.leases import LeaseBook
from service.studies import StudyCatalog, state_of

log = logging.getLogger("aelle.service")


class ArtifactStoreError(RuntimeError):
    """503: the artifact store (a directory, an S3 bucket) failed; nothing was recorded."""


class ArtifactPublic(BaseModel):
    trial_id: int
    number: int
    sha256: str
    size: int
    created_at: str


def artifact_store(settings: ServiceSettings):
    """Optuna's artifact store the settings name: an S3 bucket, or a directory."""
    if settings.artifact_s3_bucket:
        try:
            import boto3
        except ImportError:
            raise ValueError("AELLE_ARTIFACT_S3_BUCKET needs boto3: pip install "
                             "'aelle[s3]'") from None
        client = boto3.client("s3", endpoint_url=settings.artifact_s3_endpoint or None)
        return Boto3ArtifactStore(settings.artifact_s3_bucket, client=client)
    return LazyDirectoryStore(artifact_dir(settings))


def artifact_dir(settings: ServiceSettings) -> Path:
    if settings.artifact_dir:
        return Path(settings.artifact_dir)
    url = make_url(settings.database_url)
    database = url.database or ""
    if url.drivername.startswith("sqlite") and database not in ("", ":memory:") \
            and not database.startswith("file:"):
        return Path(f"{database}.artifacts")
    return Path("aelle-artifacts")


class LazyDirectoryStore(FileSystemArtifactStore):
    """Optuna's directory store, the directory made on the first write (a coordinator that
    stores nothing leaves nothing behind)."""

    def __init__(self, base_path: Path):
        super().__init__(base_path)
        self.path = base_path

    def write(self, artifact_id, content_body) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        super().write(artifact_id, content_body)


@contextlib.contextmanager
def _store_call(what: str) -> Iterator[None]:
    try:
        yield
    except ArtifactNotFound:
        raise
    except Exception as e:
        log.error("artifact store: %s failed: %r", what, e)
        raise ArtifactStoreError(f"the artifact store failed to {what}; try again") from e


class Artifacts:
    def __init__(self, db: Database, storage: RDBStorage, studies: StudyCatalog,
                 leases: LeaseBook, store, keep: int):
        self.db, self.storage, self.studies, self.leases = db, storage, studies, leases
        self.store, self.keep = store, keep

    # ---- the worker's upload
    def upload(self, tid: int, token: str, data: bytes,
               sha256: str | None = None) -> ArtifactPublic:
        from tasks.artifacts import unpack

        running, active = self.leases.verify(tid, token)
        digest = hashlib.sha256(data).hexdigest()
        if sha256 is not None and sha256.lower() != digest:
            raise Invalid(f"the body's SHA-256 is {digest}, not the {sha256} the upload "
                          "declares (the upload was cut or changed on the way)")
        with running.lock:
            old = self._row(tid)
            if old is not None:
                return self._again(old, digest)
            trial = self.storage.get_trial(tid)
            if trial.state != TrialState.RUNNING:
                raise Conflict(f"trial {trial.number} is {state_of(trial)}: a network is "
                               "uploaded while the trial runs, before its result")
            try:
                model = unpack(data)
            except ValueError as e:
                raise Invalid(str(e)) from None
            if model.task != active.spec.task or model.params != trial.params:
                raise Invalid(f"the network is of task {model.task!r} with parameters "
                              f"{model.params}; trial {trial.number} is of "
                              f"{active.spec.task!r} with {trial.params}")
            artifact_id = self._write(trial, data)
            row = {"trial_id": tid, "study_id": active.id, "number": trial.number,
                   "artifact_id": artifact_id, "sha256": digest, "size": len(data)}
            try:
                with self.db.session() as s:
                    s.execute(insert(ArtifactRow), [row])
            except BaseException as e:
                self._remove(artifact_id)
                if isinstance(e, StoreError) and isinstance(e.__cause__, IntegrityError):
                    # another coordinator process stored this trial's network first
                    return self._again(self._row(tid), digest)
                raise
        return _public(self._row(tid))

    def _again(self, old: ArtifactRow, digest: str) -> ArtifactPublic:
        if old.sha256 != digest:
            raise Conflict(f"trial {old.number} already has a stored network (SHA-256 "
                           f"{old.sha256}); a trial stores one")
        return _public(old)

    def _write(self, trial, data: bytes) -> str:
        """Write ``data`` under a new artifact id through Optuna's upload_artifact (which also
        names it in the trial's system attributes, for Optuna's tools)."""
        with tempfile.TemporaryDirectory(prefix="aelle-upload-") as tmp:
            path = os.path.join(tmp, f"trial-{trial.number}.pt")
            with open(path, "wb") as f:
                f.write(data)
            with _store_call("store a network"):
                return upload_artifact(artifact_store=self.store, file_path=path,
                                       study_or_trial=trial, storage=self.storage,
                                       mimetype="application/octet-stream")

    # ---- users
    def download(self, name: str, number: int) -> tuple[bytes, ArtifactPublic]:
        sid = self.studies.row(name).study_id
        with self.db.session() as s:
            row = s.scalar(select(ArtifactRow).where(ArtifactRow.study_id == sid,
                                                     ArtifactRow.number == number))
        if row is None:
            raise NotFound(f"trial {number} of study {name!r} has no stored network (only "
                           f"completed trials store one, and the best {self.keep} are kept)")
        try:
            with _store_call("read a network"), self.store.open_reader(row.artifact_id) as r:
                data = r.read()
        except ArtifactNotFound:
            raise NotFound(f"trial {number} of study {name!r}: its network is missing from "
                           "the artifact store") from None
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise ArtifactStoreError(f"trial {number} of study {name!r}: the stored network "
                                     "does not match its digest")
        return data, _public(row)

    # ---- retention
    def after_result(self, tid: int) -> None:
        """A trial finished: keep the networks of the study's best ``keep`` completed trials,
        delete the others' (this one's, if it did not complete). Best effort: a failure is
        logged and the next result tries again."""
        try:
            with self.db.session() as s:
                lease = s.get(LeaseRow, tid)
            if lease is not None:
                self.retain(lease.study_id)
        except Exception:
            log.exception("trial %d: keeping the best networks failed", tid)

    def retain(self, sid: int) -> list[int]:
        """Delete the networks beyond the best ``keep``; the trial numbers whose went."""
        active = self.studies.active(sid)
        with self.db.session() as s:
            rows = list(s.scalars(select(ArtifactRow).where(ArtifactRow.study_id == sid)))
        sign = 1.0 if active.spec.direction == "minimize" else -1.0
        ranked, finished = [], []
        for row in rows:
            try:
                t = self.storage.get_trial(row.trial_id)
            except KeyError:
                finished.append(row)
                continue
            if t.state == TrialState.COMPLETE and t.value is not None:
                ranked.append((sign * t.value, t.number, row))
            elif t.state != TrialState.RUNNING:
                finished.append(row)
        ranked.sort(key=lambda x: (x[0], x[1]))
        gone = finished + [row for _, _, row in ranked[self.keep:]]
        for row in gone:
            self._drop(row)
        return [row.number for row in gone]

    def drop_study(self, sid: int) -> int:
        """Delete every network of the study; how many."""
        with self.db.session() as s:
            rows = list(s.scalars(select(ArtifactRow).where(ArtifactRow.study_id == sid)))
        for row in rows:
            self._drop(row)
        return len(rows)

    def forget_trial(self, tid: int) -> None:
        """A reused trial id (SQLite gives a deleted trial's id out again): its old row
        goes."""
        row = self._row(tid)
        if row is not None:
            self._drop(row)

    def _drop(self, row: ArtifactRow) -> None:
        # the row first: a network no row names is unreachable, never served half-deleted
        with self.db.session() as s:
            s.execute(delete(ArtifactRow).where(ArtifactRow.trial_id == row.trial_id,
                                                ArtifactRow.artifact_id == row.artifact_id))
        self._remove(row.artifact_id)

    def _remove(self, artifact_id: str) -> None:
        try:
            self.store.remove(artifact_id)
        except ArtifactNotFound:
            pass
        except Exception:
            log.exception("artifact %s could not be removed from the store", artifact_id)

    def _row(self, tid: int) -> ArtifactRow | None:
        with self.db.session() as s:
            return s.get(ArtifactRow, tid)

    def count(self, sid: int) -> int:
        with self.db.session() as s:
            return len(s.scalars(select(ArtifactRow.trial_id)
                                 .where(ArtifactRow.study_id == sid)).all())


def _public(row: ArtifactRow) -> ArtifactPublic:
    return ArtifactPublic(trial_id=row.trial_id, number=row.number, sha256=row.sha256,
                          size=row.size, created_at=row.created_at.isoformat())
