"""Schema versions: a new database is created and stamped, an old one is brought forward with
its rows kept, a newer one is refused untouched."""

import pytest
from sqlalchemy import create_engine, inspect, text

from service.coordinator import Coordinator
from service.db import Base, StoreError
from service.migrations import SCHEMA_VERSION, current_version, migrate
from service.specs import StudyCreate
from tests.service.support import service_settings, study


def columns(url, table):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {c["name"] for c in inspect(conn).get_columns(table)}
    finally:
        engine.dispose()


def execute(url, *statements):
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            return [conn.execute(text(s)).all() if s.startswith("SELECT") else
                    conn.execute(text(s)) for s in statements]
    finally:
        engine.dispose()


def version(url):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return current_version(conn)
    finally:
        engine.dispose()


def test_a_new_database_is_created_and_stamped_once(tmp_path):
    url = f"sqlite:///{tmp_path}/new.db"
    assert version(url) is None
    assert migrate(url) == [f"created the tables (schema version {SCHEMA_VERSION})"]
    assert version(url) == SCHEMA_VERSION and "retry_of" in columns(url, "aelle_leases")
    assert "trial_values" in inspect(create_engine(url)).get_table_names()  # Optuna's
    assert migrate(url) == []


def test_a_database_from_before_versioning_gets_the_new_column_and_keeps_its_rows(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    engine = create_engine(url)
    old = [t for name, t in Base.metadata.tables.items()
           if name not in ("aelle_leases", "aelle_schema")]
    Base.metadata.create_all(engine, tables=old)
    engine.dispose()
    execute(url, "CREATE TABLE aelle_leases (trial_id INTEGER PRIMARY KEY, study_id INTEGER, "
                 "token VARCHAR(64), worker VARCHAR(256), leased_at DATETIME, "
                 "finished_at DATETIME)",
            "INSERT INTO aelle_leases (trial_id, study_id, token, worker) "
            "VALUES (7, 1, 'tok', 'w')")
    assert version(url) == 0
    done = migrate(url)
    assert done[0] == ("schema version 1: aelle_leases.retry_of: the trial number a lease runs "
                       "again")
    assert "retry_of" in columns(url, "aelle_leases") and version(url) == SCHEMA_VERSION
    [rows] = execute(url, "SELECT trial_id, token, retry_of FROM aelle_leases")
    assert rows == [(7, "tok", None)]


def test_a_database_from_a_newer_coordinator_is_refused_untouched(tmp_path):
    url = f"sqlite:///{tmp_path}/newer.db"
    migrate(url)
    execute(url, f"UPDATE aelle_schema SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=f"version {SCHEMA_VERSION + 1}, newer than this "
                                         f"coordinator's \\({SCHEMA_VERSION}\\)"):
        migrate(url)
    with pytest.raises(StoreError, match="upgrade aelle"):
        Coordinator(service_settings(url))
    assert version(url) == SCHEMA_VERSION + 1


def test_a_coordinator_migrates_at_start_and_works(tmp_path):
    url = f"sqlite:///{tmp_path}/c.db"
    c = Coordinator(service_settings(url))
    c.create_study(StudyCreate.model_validate(study()))
    assert c.lease("w") is not None and version(url) == SCHEMA_VERSION


def with_a_study(url, *statements):
    """A current database at ``url`` holding the study "kept" (created unless it exists),
    then ``statements`` run on it: an older version's made by hand; its coordinator."""
    c = Coordinator(service_settings(url))
    if "kept" not in c.studies.names():
        c.create_study(StudyCreate.model_validate(study(name="kept")))
    c.db.engine.dispose()
    c.storage.engine.dispose()
    if statements:
        execute(url, *statements)
    return c


def test_aelle_migrate_says_what_it_did(tmp_path, capsys):
    from aelle.cli import main

    url = f"sqlite:///{tmp_path}/cli.db"
    assert main(["migrate", "--database-url", url]) == 0
    assert "created the tables" in capsys.readouterr().out
    assert main(["migrate", "--database-url", url]) == 0
    assert capsys.readouterr().out.strip() == "the database is up to date"


def test_a_version_2_database_gets_the_artifacts_table_and_keeps_its_studies(tmp_path):
    url = f"sqlite:///{tmp_path}/v2.db"
    with_a_study(url, "DROP TABLE aelle_artifacts", "UPDATE aelle_schema SET version = 2")
    assert version(url) == 2
    assert migrate(url)[0] == ("schema version 3: aelle_artifacts: the trained network each "
                               "trial stored")
    assert version(url) == SCHEMA_VERSION == 6
    assert {"trial_id", "artifact_id", "sha256"} <= columns(url, "aelle_artifacts")
    assert execute(url, "SELECT name FROM aelle_studies")[0] == [("kept",)]


def test_a_version_2_database_gets_the_task_version_column_and_keeps_its_studies(tmp_path):
    url = f"sqlite:///{tmp_path}/v2.db"
    engine = create_engine(url)
    Base.metadata.create_all(engine, tables=[t for name, t in Base.metadata.tables.items()
                                             if name not in ("aelle_studies", "aelle_schema")])
    engine.dispose()
    execute(url, "CREATE TABLE aelle_studies (study_id INTEGER PRIMARY KEY, name VARCHAR(512) "
                 "UNIQUE, spec JSON, budget INTEGER, stopped BOOLEAN, created_at DATETIME, "
                 "quarantine VARCHAR(1024), stop_reason VARCHAR(1024))",
            "INSERT INTO aelle_studies (study_id, name, spec, budget, stopped) "
            "VALUES (1, 'old', '{\"task\": \"smnist\"}', 5, 0)",
            "CREATE TABLE aelle_schema (version INTEGER PRIMARY KEY)",
            "INSERT INTO aelle_schema (version) VALUES (2)")
    assert version(url) == 2
    assert migrate(url)[-3] == ("schema version 4: aelle_studies.task_version: the task "
                                "version a study's trials run with")
    assert {"task_version", "budget_epochs"} <= columns(url, "aelle_studies")
    assert version(url) == 6
    [rows] = execute(url, "SELECT name, budget, task_version, budget_epochs FROM aelle_studies")
    assert rows == [("old", 5, None, None)]


def test_a_version_4_database_gets_the_explains_table_and_keeps_its_studies(tmp_path):
    url = f"sqlite:///{tmp_path}/v4.db"
    with_a_study(url, "DROP TABLE aelle_explains", "UPDATE aelle_schema SET version = 4")
    assert version(url) == 4
    assert migrate(url)[0] == ("schema version 5: aelle_explains: each trial's stored "
                               "explanation (report JSON and HTML)")
    assert version(url) == SCHEMA_VERSION == 6
    assert {"study_id", "number", "trial_id", "report", "html"} <= columns(url,
                                                                          "aelle_explains")
    assert execute(url, "SELECT name FROM aelle_studies")[0] == [("kept",)]
    assert with_a_study(url).summary("kept").name == "kept"  # and a coordinator serves it


def test_a_version_5_database_gets_the_epoch_budget_column_and_its_studies_keep_their_budget(
        tmp_path):
    url = f"sqlite:///{tmp_path}/v5.db"
    with_a_study(url, "ALTER TABLE aelle_studies DROP COLUMN budget_epochs",
                 "UPDATE aelle_schema SET version = 5")
    assert "budget_epochs" not in columns(url, "aelle_studies")
    assert migrate(url) == ["schema version 6: aelle_studies.budget_epochs: a study's compute "
                            "budget in epochs trained"]
    assert version(url) == SCHEMA_VERSION == 6
    [rows] = execute(url, "SELECT name, budget_epochs FROM aelle_studies")
    assert rows == [("kept", None)]
    summary = with_a_study(url).summary("kept")  # served, bound by its trial budget alone
    assert summary.budget_epochs is None and not summary.spent
