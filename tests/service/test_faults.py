"""Database faults and changes made outside the coordinator: a database error is a 503 with
Retry-After on every route that writes, a lease is never half-stored, and a study deleted by
another tool (optuna-dashboard's "Delete study") is passed by without failing the others."""

import sqlite3
import threading
import time

import numpy as np
import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.trial import TrialState
from sqlalchemy import insert
from sqlalchemy.exc import OperationalError

from service.api.app import create_app
from service.db import LeaseRow, ReportRow, pack_spectrum
from tests.service.support import (
    API,
    USER,
    WORKER,
    lease,
    patient_settings,
    report,
    result,
    study,
)


@pytest.fixture
def locked_client(tmp_path):
    """A coordinator whose SQLite file another process can lock: it waits 0.2 s, not 30; its
    leases outlive a loaded machine's retries (a 3 s grace period let the sweep take them)."""
    settings = patient_settings(f"sqlite:///{tmp_path}/aelle.db", sqlite_timeout=0.2)
    with TestClient(create_app(settings)) as c:
        yield c, f"{tmp_path}/aelle.db"


def retried(call, seconds=10.0):
    """``call()`` again while it answers 503, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while (r := call()).status_code == 503 and time.monotonic() < deadline:
        time.sleep(float(r.headers.get("retry-after", "1")) / 4)
    return r


def test_a_locked_sqlite_file_is_503_with_retry_after_on_every_writing_route(locked_client):
    client, path = locked_client
    client.post(f"{API}/studies", json=study(budget=3), headers=USER)
    got = lease(client)
    assert report(client, got).status_code == 200
    time.sleep(1.1)  # SQLite's clock has seconds: a heartbeat within the same one writes nothing
    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another writer holds the file
    other.execute("UPDATE aelle_studies SET budget = budget")
    try:
        answers = [
            report(client, got, epoch=1),
            client.post(f"{API}/trials/{got['trial_id']}/heartbeat",
                        json={"lease": got["token"]}, headers=WORKER),
            result(client, got, value=0.5),
            client.post(f"{API}/leases", json={}, headers=WORKER),
            client.post(f"{API}/studies", json=study(name="t"), headers=USER),
        ]
        # (readers still read: SQLite writes ahead, and a writer's lock does not stop them)
        assert client.get(f"{API}/studies", headers=USER).status_code == 200
    finally:
        other.execute("ROLLBACK")
        other.close()
    for r in answers:
        assert r.status_code == 503, (r.request.url, r.text)
        assert r.headers["retry-after"].isdigit()
    # nothing was lost: the report goes through once the lock is gone (retried as a worker
    # would: with a 0.2 s lock timeout, the coordinator's own background writes, the sweep
    # and the model's refit, can still make one attempt a 503)
    assert retried(lambda: report(client, got, epoch=1)).status_code == 200
    done = retried(lambda: result(client, got, value=0.5))
    assert done.status_code == 200 and done.json()["state"] == "complete", done.text


def refuse_writes(monkeypatch, coordinator, table: str, kind: str = "insert",
                  times: int = 1) -> None:
    """The coordinator's next ``times`` writes of ``kind`` (insert or update) into ``table``,
    made while answering a request, fail as a lost connection does (the background sweep's
    writes pass, so that it cannot use up the failure)."""
    real = coordinator.db.session
    failing = {"left": times}

    class Refusing:
        def __init__(self):
            self.inner = real()

        def __enter__(self):
            s = self.inner.__enter__()
            execute = s.execute

            def refuse(statement, *a, **kw):
                if getattr(statement, "table", None) is not None \
                        and statement.table.name == table \
                        and getattr(statement, f"is_{kind}", False) and failing["left"] \
                        and threading.current_thread().name != "aelle-sweeper":
                    failing["left"] -= 1
                    raise OperationalError("INSERT", {}, Exception("connection lost"))
                return execute(statement, *a, **kw)

            s.execute = refuse
            return s

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

    monkeypatch.setattr(coordinator.db, "session", Refusing)


def test_a_failed_lease_insert_leaves_no_running_trial_and_the_budget_exact(client,
                                                                          monkeypatch):
    client.post(f"{API}/studies", json=study(budget=2), headers=USER)
    coordinator = client.app.state.coordinator
    refuse_writes(monkeypatch, coordinator, "aelle_leases")
    r = client.post(f"{API}/leases", json={}, headers=WORKER)
    assert r.status_code == 503 and "retry-after" in r.headers
    sid = coordinator.studies.row("s").study_id
    [abandoned] = coordinator.storage.get_all_trials(sid)
    assert abandoned.state == TrialState.FAIL  # not left running without a lease
    a, b = lease(client), lease(client)
    assert {a["study"], b["study"]} == {"s"}
    assert lease(client)["trial_id"] is None  # the budget of 2 holds exactly
    assert client.get(f"{API}/studies/s", headers=USER).json()["used"] == 2


def test_a_report_half_stored_by_a_failed_write_is_completed_by_the_retry(client, monkeypatch):
    """A report writes Optuna's intermediate value, then the coordinator's report row. When
    the second write fails the answer is a 503, and the worker's retry of the same epoch
    stores the row once, with the same value, and the trial goes on to complete."""
    client.post(f"{API}/studies", json=study(budget=1), headers=USER)
    coordinator = client.app.state.coordinator
    got = lease(client)
    refuse_writes(monkeypatch, coordinator, "aelle_reports")
    first = report(client, got, epoch=0, value=0.8)
    assert first.status_code == 503 and "retry-after" in first.headers
    assert coordinator.storage.get_trial(got["trial_id"]).intermediate_values == {0: 0.8}
    again = report(client, got, epoch=0, value=0.8)
    assert again.status_code == 200, again.text
    assert report(client, got, epoch=0, value=0.8).json() == again.json()  # idempotent now
    with coordinator.db.session() as s:
        rows = s.query(ReportRow).filter_by(trial_id=got["trial_id"]).all()
    assert [(r.step, r.value) for r in rows] == [(0, 0.8)]
    assert report(client, got, epoch=1, value=0.6).status_code == 200
    assert result(client, got, value=0.6).json()["state"] == "complete"
    trial = coordinator.storage.get_trial(got["trial_id"])
    assert trial.intermediate_values == {0: 0.8, 1: 0.6} and trial.value == 0.6


def test_a_result_whose_lease_update_failed_is_finished_by_the_retry(client, monkeypatch):
    client.post(f"{API}/studies", json=study(budget=1), headers=USER)
    coordinator = client.app.state.coordinator
    got = lease(client)
    assert report(client, got, epoch=0).status_code == 200
    refuse_writes(monkeypatch, coordinator, "aelle_leases", kind="update")
    first = result(client, got, value=0.5)
    assert first.status_code == 503, first.text  # Optuna was told; the lease was not closed
    again = result(client, got, value=0.5)
    assert again.status_code == 200 and again.json()["state"] == "complete", again.text
    with coordinator.db.session() as s:
        [row] = s.query(LeaseRow).filter_by(trial_id=got["trial_id"]).all()
    assert row.finished_at is not None
    assert client.get(f"{API}/studies/s", headers=USER).json()["used"] == 1


def test_a_running_trial_without_a_lease_is_failed_by_the_sweep(client):
    """A coordinator that stopped between asking Optuna for a trial and storing its lease
    leaves a running trial nobody runs; the next sweep fails it."""
    client.post(f"{API}/studies", json=study(budget=2), headers=USER)
    coordinator = client.app.state.coordinator
    active = coordinator.studies.active(coordinator.studies.row("s").study_id)
    orphan = active.study.ask()
    coordinator.leases._grace = 0.0
    coordinator.leases._orphans_due = 0.0
    coordinator.sweep()
    assert coordinator.storage.get_trial(orphan._trial_id).state == TrialState.FAIL
    assert lease(client)["trial_id"] is not None


def test_a_study_deleted_outside_the_coordinator_is_passed_by(client):
    client.post(f"{API}/studies", json=study(name="gone", budget=3), headers=USER)
    client.post(f"{API}/studies", json=study(name="kept", budget=3), headers=USER)
    coordinator = client.app.state.coordinator
    running = lease(client)
    assert running["study"] == "gone"
    coordinator.studies._active.clear()  # as after a restart, or in another process
    optuna.delete_study(study_name="gone", storage=coordinator.storage)
    listed = client.get(f"{API}/studies", headers=USER)
    assert listed.status_code == 200
    gone = {s["name"]: s for s in listed.json()["data"]}["gone"]
    assert "deleted outside the coordinator" in gone["quarantine"]
    assert lease(client)["study"] == "kept"
    r = report(client, running)
    assert r.status_code in (404, 409), r.text
    sid = coordinator.studies.row("gone").study_id
    coordinator.sweep()  # its open leases are closed; the sweep does not fail on them
    with coordinator.db.session() as s:
        assert s.query(LeaseRow).filter(LeaseRow.study_id == sid,
                                        LeaseRow.finished_at.is_(None)).count() == 0


def test_a_trial_deleted_with_its_study_is_404_to_a_tracking_coordinator(client):
    client.post(f"{API}/studies", json=study(name="gone", budget=3), headers=USER)
    coordinator = client.app.state.coordinator
    running = lease(client)
    assert report(client, running).status_code == 200
    optuna.delete_study(study_name="gone", storage=coordinator.storage)
    for r in (report(client, running, epoch=1),
              client.post(f"{API}/trials/{running['trial_id']}/heartbeat",
                          json={"lease": running["token"]}, headers=WORKER),
              result(client, running, value=1.0)):
        assert r.status_code in (404, 409), r.text


def test_the_health_check_fails_once_the_tables_are_gone(client):
    assert client.get(f"{API}/health").status_code == 200
    coordinator = client.app.state.coordinator
    with coordinator.db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE aelle_reports")
    r = client.get(f"{API}/health")
    assert r.status_code == 503


def test_a_report_another_coordinator_stored_first_gets_its_answer_not_503(client):
    """Two coordinators on one database: a worker's retry of a report may reach the second
    after the first stored it (the first's answer was lost)."""
    client.post(f"{API}/studies", json=study(budget=1), headers=USER)
    coordinator = client.app.state.coordinator
    got = lease(client)
    sid = coordinator.studies.row("s").study_id
    with coordinator.db.session() as s:  # what the other coordinator stored
        s.execute(insert(ReportRow), [{
            "trial_id": got["trial_id"], "step": 0, "study_id": sid, "value": 2.0,
            "spectrum": pack_spectrum(np.full(8, 0.1)), "size": 8, "max_le": 0.1,
            "mean_le": 0.1, "decision": "continue", "reason": "stored by the other one"}])
    r = report(client, got)
    assert r.status_code == 200 and r.json()["reason"] == "stored by the other one"
    other = report(client, got, value=3.0)
    assert other.status_code == 409
