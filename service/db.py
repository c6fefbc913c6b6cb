"""The coordinator's own tables, beside Optuna's in the same database (SQLAlchemy 2).

Optuna owns studies and trials (touched only through its storage API); these tables hold what
Optuna has no place for: each study's specification and budget, the lease of each running
trial, every epoch's report (value, spectrum, decision) and the study's AeLLE models.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator

import numpy as np
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from service.config import ServiceSettings

REASON_LENGTH = 1024       # a stored reason is cut to this
WORKER_NAME_LENGTH = 256
TASK_VERSION_LENGTH = 64


class StoreError(RuntimeError):
    """The database failed (driver or connection error), whatever the backend."""


def database_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean the database failed, however they come out: the
    project's StoreError, SQLAlchemy's errors (Optuna's storage lets some through), Optuna's
    StorageInternalError (its wrapper of them) and the drivers' own."""
    import sqlite3

    from optuna.exceptions import StorageInternalError

    kinds: list[type[BaseException]] = [StoreError, SQLAlchemyError, StorageInternalError,
                                        sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    else:
        kinds.append(psycopg.Error)
    return tuple(kinds)


def is_database_error(e: BaseException) -> bool:
    """Whether ``e`` (or what it was raised from) is a failure of the database, not of the
    request or the data: the one kind of error that is never the study's fault."""
    kinds = database_errors()
    while e is not None:
        if isinstance(e, kinds):
            return True
        e = e.__cause__
    return False


class Base(DeclarativeBase):
    pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StudyRow(Base):
    __tablename__ = "aelle_studies"

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # Optuna's study id
    name: Mapped[str] = mapped_column(String(512), unique=True)
    spec: Mapped[dict] = mapped_column(JSON)
    budget: Mapped[int] = mapped_column(Integer)
    budget_epochs: Mapped[int | None] = mapped_column(Integer)  # None: trials only
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # why the study is no longer served (its stored spec, or its Optuna study, proved broken)
    quarantine: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    # why leasing stopped, when the coordinator stopped it (a quota was reached)
    stop_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    # the version of its task its trials run with: the coordinator's when it has the task,
    # else the first worker's that asked for a lease of it
    task_version: Mapped[str | None] = mapped_column(String(TASK_VERSION_LENGTH))


class LeaseRow(Base):
    __tablename__ = "aelle_leases"

    trial_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # Optuna's trial id
    study_id: Mapped[int] = mapped_column(ForeignKey("aelle_studies.study_id"), index=True)
    token: Mapped[str] = mapped_column(String(64))
    worker: Mapped[str] = mapped_column(String(WORKER_NAME_LENGTH))
    retry_of: Mapped[int | None] = mapped_column(Integer)  # the trial number it runs again
    leased_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ReportRow(Base):
    __tablename__ = "aelle_reports"

    trial_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(Integer, index=True)
    value: Mapped[float] = mapped_column(Float)
    spectrum: Mapped[bytes | None] = mapped_column(LargeBinary)  # float64, little-endian
    size: Mapped[int] = mapped_column(Integer, default=0)
    max_le: Mapped[float | None] = mapped_column(Float)
    mean_le: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str | None] = mapped_column(String(16))  # "continue" / "prune"
    prediction: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    model: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ArtifactRow(Base):
    """A trial's stored network: where it is in the artifact store, and its digest."""

    __tablename__ = "aelle_artifacts"

    trial_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # Optuna's trial id
    study_id: Mapped[int] = mapped_column(Integer, index=True)
    number: Mapped[int] = mapped_column(Integer)
    artifact_id: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ExplainRow(Base):
    """A trial's explanation (``aelle explain --upload``): the report's JSON, and its HTML."""

    __tablename__ = "aelle_explains"

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict] = mapped_column(JSON)
    html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


TABLES = ("aelle_studies", "aelle_leases", "aelle_reports")  # the ones every request needs


def pack_spectrum(spectrum: np.ndarray) -> bytes:
    """A spectrum as stored: float64, little-endian."""
    return np.ascontiguousarray(spectrum, dtype="<f8").tobytes()


def unpack_spectrum(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype="<f8")


class ModelRow(Base):
    __tablename__ = "aelle_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[str] = mapped_column(String(64))
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    trials: Mapped[int] = mapped_column(Integer)
    spectra: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


def engine_options(url: str, settings: ServiceSettings | None = None) -> dict:
    """The keyword arguments of ``create_engine`` for ``url``, shared by the project's engine
    and Optuna's storage: SQLite waits ``sqlite_timeout`` for another writer's lock and may be
    used from several threads; PostgreSQL checks pooled connections before use and pools
    ``db_pool_size`` (+ ``db_max_overflow``). Without ``settings``, the declared defaults."""
    settings = settings if settings is not None else ServiceSettings.model_construct()
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": settings.sqlite_timeout,
                                 "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_max_overflow}


def engine_for(url: str, settings: ServiceSettings | None = None) -> Engine:
    """An engine for ``url`` with :func:`engine_options`; SQLite also writes ahead (readers do
    not block the writer) and keeps foreign keys."""
    engine = create_engine(url, **engine_options(url, settings))
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _):
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


class AlreadyServed(RuntimeError):
    """Another coordinator serves this SQLite file (its budgets and leases are kept in one
    process's memory and locks: a second one would overrun them)."""


class SqliteLock:
    """One coordinator per SQLite file: an exclusive lock on ``<file>.coordinator.lock``,
    held while the coordinator runs, released when it closes or its process ends. The lock
    is the operating system's (flock), so a crashed coordinator leaves none behind. Other
    backends, and in-memory SQLite, need none."""

    def __init__(self, url: str):
        from sqlalchemy.engine import make_url

        u = make_url(url)
        database = u.database or ""
        self.path = (None if not u.drivername.startswith("sqlite") or database in ("", ":memory:")
                     or database.startswith("file:") else f"{database}.coordinator.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.path is None or self._fd is not None:
            return
        import fcntl
        import os

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AlreadyServed(f"another coordinator serves this SQLite file (it holds "
                                f"{self.path}); one SQLite file takes one coordinator, several "
                                "share a PostgreSQL database") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl
        import os

        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


class Database:
    """The project's tables and the one session scope through which they are used."""

    def __init__(self, url: str, settings: ServiceSettings | None = None):
        self.url = url
        self.engine = engine_for(url, settings)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on any error; driver
        errors come out as StoreError."""
        with self._wrap(), self._sessions() as s, s.begin():
            yield s

    @contextlib.contextmanager
    def _wrap(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as e:
            # the driver's text can hold the URL or the statement: it stays in __cause__
            raise StoreError(f"database error ({type(e).__name__})") from e

    @contextlib.contextmanager
    def advisory_lock(self, key: int) -> Iterator[None]:
        """Serialise a critical section across processes (PostgreSQL advisory lock); on other
        backends a no-op (one coordinator process; callers also hold a thread lock)."""
        if not self.postgres:
            yield
            return
        with self._wrap(), self.engine.connect() as conn:
            conn.execute(select(func.pg_advisory_lock(key)))
            try:
                yield
            finally:
                conn.execute(select(func.pg_advisory_unlock(key)))
                conn.commit()

    def ping(self, tables: bool = False) -> None:
        """The database answers; with ``tables``, Optuna's tables and ours are there too (a
        database whose tables were dropped answers, and serves nothing)."""
        with self._wrap(), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            if tables:
                for table in ("studies", "trials", *TABLES):
                    conn.execute(text(f"SELECT 1 FROM {table} LIMIT 1"))

    def wait(self, seconds: float) -> None:
        """Ping until the database answers (a container may start before it), at most
        ``seconds``; StoreError after that."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.ping()
                return
            except StoreError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)
