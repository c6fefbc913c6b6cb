"""Schema versions of the coordinator's tables, and the steps between them.

A new database gets the current tables and is stamped with ``SCHEMA_VERSION``. A database made
by an earlier coordinator is brought forward one numbered step at a time, in one transaction,
so that a failed step leaves it as it was (on PostgreSQL; SQLite's driver commits each table
change by itself); one made by a newer coordinator is refused (this one would not know its
tables). Databases from before versioning (our tables, no version row) count as version 0.
Optuna's own tables are upgraded by Optuna (``RDBStorage.upgrade``).

To change a table: change the model in :mod:`service.db`, add a step here that brings an
existing table to it, and raise ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from optuna.storages import RDBStorage
from sqlalchemy import Connection, Engine, Integer, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from service.db import ArtifactRow, Base, ExplainRow, StoreError, engine_for


class SchemaRow(Base):
    __tablename__ = "aelle_schema"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)


def _lease_retry_of(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("aelle_leases")}
    if "retry_of" not in columns:
        conn.execute(text("ALTER TABLE aelle_leases ADD COLUMN retry_of INTEGER"))


def _study_status(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("aelle_studies")}
    for name in ("quarantine", "stop_reason"):
        if name not in columns:
            conn.execute(text(f"ALTER TABLE aelle_studies ADD COLUMN {name} VARCHAR(1024)"))


def _artifacts(conn: Connection) -> None:
    ArtifactRow.__table__.create(conn, checkfirst=True)


def _study_task_version(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("aelle_studies")}
    if "task_version" not in columns:
        conn.execute(text("ALTER TABLE aelle_studies ADD COLUMN task_version VARCHAR(64)"))


def _explains(conn: Connection) -> None:
    ExplainRow.__table__.create(conn, checkfirst=True)


def _study_budget_epochs(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("aelle_studies")}
    if "budget_epochs" not in columns:
        conn.execute(text("ALTER TABLE aelle_studies ADD COLUMN budget_epochs INTEGER"))


# version -> (what it changes, the step from version - 1)
STEPS: dict[int, tuple[str, Callable[[Connection], None]]] = {
    1: ("aelle_leases.retry_of: the trial number a lease runs again", _lease_retry_of),
    2: ("aelle_studies.quarantine and stop_reason: why a study is no longer served or leased",
        _study_status),
    3: ("aelle_artifacts: the trained network each trial stored", _artifacts),
    4: ("aelle_studies.task_version: the task version a study's trials run with",
        _study_task_version),
    5: ("aelle_explains: each trial's stored explanation (report JSON and HTML)", _explains),
    6: ("aelle_studies.budget_epochs: a study's compute budget in epochs trained",
        _study_budget_epochs),
}
SCHEMA_VERSION = max(STEPS)
OURS = ("aelle_studies", "aelle_leases", "aelle_reports", "aelle_models", "aelle_artifacts",
        "aelle_explains")
MIGRATION_LOCK = 7407735  # the PostgreSQL advisory lock key held while migrating


def migrate(url: str) -> list[str]:
    """Bring Optuna's tables and ours in the database at ``url`` up to date; returns what was
    done (empty: nothing)."""
    engine = engine_for(url)
    try:
        with _one_at_a_time(engine):
            return _optuna(url) + migrate_ours(engine)
    finally:
        engine.dispose()


@contextlib.contextmanager
def _one_at_a_time(engine: Engine) -> Iterator[None]:
    """Coordinators starting together on PostgreSQL migrate one after the other (creating
    Optuna's tables twice at once fails); one SQLite file has one coordinator."""
    if engine.dialect.name != "postgresql":
        yield
        return
    try:
        conn = engine.connect()
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        conn.commit()
    except SQLAlchemyError as e:
        raise StoreError(f"the database did not answer ({type(e).__name__})") from e
    try:
        yield
    finally:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
        conn.commit()
        conn.close()


def _optuna(url: str) -> list[str]:
    try:
        storage = RDBStorage(url, skip_compatibility_check=True)  # creates them when new
    except SQLAlchemyError as e:
        raise StoreError(f"Optuna's tables could not be read ({type(e).__name__})") from e
    try:
        before = storage.get_current_version()
        if before == storage.get_head_version():
            return []
        storage.upgrade()
        return [f"Optuna's tables upgraded from {before} to {storage.get_current_version()}"]
    except SQLAlchemyError as e:
        raise StoreError(f"Optuna's tables could not be upgraded ({type(e).__name__})") from e
    finally:
        storage.engine.dispose()


def migrate_ours(engine: Engine) -> list[str]:
    """Bring our tables to ``SCHEMA_VERSION`` (callers on PostgreSQL hold the migration
    lock)."""
    try:
        with engine.begin() as conn:
            return _migrate(conn)
    except SQLAlchemyError as e:
        raise StoreError(f"database migration failed ({type(e).__name__}); the database was "
                         "left as it was") from e


def current_version(conn: Connection) -> int | None:
    """The stamped version; 0 for our tables without a stamp; None for no tables of ours."""
    tables = set(inspect(conn).get_table_names())
    if SchemaRow.__tablename__ in tables:
        version = conn.execute(text("SELECT max(version) FROM aelle_schema")).scalar()
        if version is not None:
            return version
    return 0 if tables & set(OURS) else None


def _migrate(conn: Connection) -> list[str]:
    version = current_version(conn)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(f"the database's schema is version {version}, newer than this "
                         f"coordinator's ({SCHEMA_VERSION}): upgrade aelle to use it")
    if version == SCHEMA_VERSION:
        return []
    done = []
    if version is None:
        Base.metadata.create_all(conn)
        done.append(f"created the tables (schema version {SCHEMA_VERSION})")
    else:
        for step in range(version + 1, SCHEMA_VERSION + 1):
            what, apply = STEPS[step]
            apply(conn)
            done.append(f"schema version {step}: {what}")
        Base.metadata.create_all(conn)  # tables new since ``version``
    conn.execute(text("DELETE FROM aelle_schema"))
    conn.execute(text("INSERT INTO aelle_schema (version) VALUES (:v)"), {"v": SCHEMA_VERSION})
    return done
