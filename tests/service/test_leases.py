"""Leases through the API: exact budgets, retries, heartbeats and the stale-trial sweep."""

import time

from service.db import LeaseRow
from tests.service.support import API, USER, WORKER, lease, report, result, study


def test_budget_is_exact_and_no_work_is_a_normal_answer(client):
    client.post(f"{API}/studies", json=study(budget=2), headers=USER)
    a, b = lease(client), lease(client)
    assert a["trial_id"] != b["trial_id"] and a["token"] != b["token"]
    assert a["task"] == "smnist" and a["settings"]["epochs"] == 2
    assert a["settings"]["hidden"] == 8 and "arch" in a["params"]
    assert lease(client) == {"trial_id": None, "detail": "no work"}
    assert client.get(f"{API}/studies/s", headers=USER).json()["used"] == 2


def test_an_epoch_budget_stops_new_trials_once_spent_and_can_be_raised(client):
    spec = {k: v for k, v in study(budget_epochs=3, epochs=2).items() if k != "budget"}
    assert client.post(f"{API}/studies", json=spec, headers=USER).status_code == 201
    a = lease(client)
    for epoch in range(3):  # epoch 0 is the untrained network: it trains nothing
        assert report(client, a, epoch=epoch).status_code == 200
    result(client, a)
    got = client.get(f"{API}/studies/s", headers=USER).json()
    assert (got["epochs_used"], got["budget_epochs"], got["spent"]) == (2, 3, False)
    b = lease(client)
    assert b["trial_id"] is not None
    report(client, b, epoch=0)
    report(client, b, epoch=1)
    assert lease(client)["trial_id"] is None  # 3 epochs trained: no new trial starts
    report(client, b, epoch=2)  # while the running one finishes
    result(client, b)
    got = client.get(f"{API}/studies/s", headers=USER).json()
    assert (got["used"], got["epochs_used"], got["spent"]) == (2, 4, True)
    raised = client.post(f"{API}/studies/s/budget", json={"budget_epochs": 6}, headers=USER)
    assert raised.status_code == 200 and raised.json()["spent"] is False
    assert lease(client)["trial_id"] is not None


def test_budgets_that_cannot_be_used_are_refused_by_name(client):
    spec = {k: v for k, v in study().items() if k != "budget"}
    r = client.post(f"{API}/studies", json=spec, headers=USER)
    assert r.status_code == 422 and "budget_epochs" in str(r.json()["detail"])
    client.post(f"{API}/studies", json=study(budget=2), headers=USER)
    for body, words in (({"budget_epochs": 10}, "has no epoch budget"),
                        ({}, "give a new budget"), ({"budget": 2}, "does not raise")):
        r = client.post(f"{API}/studies/s/budget", json=body, headers=USER)
        assert r.status_code == 422 and words in r.json()["detail"], r.json()
    got = client.get(f"{API}/studies/s", headers=USER).json()
    assert (got["budget"], got["budget_epochs"]) == (2, None)  # nothing changed


def test_a_pruner_that_reads_no_untrained_spectrum_spares_its_probe(client):
    def first_lease(**kw):
        client.post(f"{API}/studies", json=study(budget=1, **kw), headers=USER)
        got = lease(client)
        assert got["study"] == kw["name"]
        return got["settings"]

    # the default pruner reads the tiny smnist study's hyperparameters, not its spectrum
    default = {k: v for k, v in study(name="hp").items() if k != "pruner"}
    client.post(f"{API}/studies", json={**default, "budget": 1}, headers=USER)
    assert lease(client)["settings"]["spectrum_initial"] is False
    assert first_lease(name="reads")["spectrum_initial"] is True  # AeLLE reads every spectrum
    asked = {**study()["settings"], "spectrum_initial": True}
    assert first_lease(name="asked", settings=asked,
                       pruner={"name": "median"})["spectrum_initial"] is True
    assert first_lease(name="plain", pruner={"name": "median"})["spectrum_initial"] is False


def test_a_handed_back_trial_is_retried_with_its_parameters(client):
    client.post(f"{API}/studies", json=study(budget=1), headers=USER)
    first = lease(client)
    r = result(client, first, state="failed", value=None, reason="worker stopped", retry=True)
    assert r.json()["state"] == "failed"
    again = lease(client)
    assert again["params"] == first["params"] and again["retry_of"] == first["number"]
    assert lease(client)["trial_id"] is None  # the retry replaced it: the budget still holds
    assert client.get(f"{API}/studies/s", headers=USER).json()["used"] == 1


def test_stale_heartbeat_fails_and_requeues_and_the_dead_lease_is_refused(client):
    client.post(f"{API}/studies", json=study(budget=1), headers=USER)
    got = lease(client)
    beat = client.post(f"{API}/trials/{got['trial_id']}/heartbeat",
                       json={"lease": got["token"]}, headers=WORKER)
    assert beat.json() == {"trial_id": got["trial_id"], "state": "running"}
    coordinator = client.app.state.coordinator
    deadline = time.monotonic() + 20
    while client.get(f"{API}/studies/s", headers=USER).json()["counts"].get("failed", 0) == 0:
        assert time.monotonic() < deadline, "the stale trial was never failed"
        time.sleep(0.3)
    r = report(client, got)
    assert r.status_code == 409 and "failed" in r.json()["detail"]
    beat = client.post(f"{API}/trials/{got['trial_id']}/heartbeat",
                       json={"lease": got["token"]}, headers=WORKER)
    assert beat.status_code == 409
    retry = lease(client)
    assert retry["params"] == got["params"] and retry["retry_of"] == got["number"]
    assert coordinator.sweep() == 0
    # the failed trial's lease is closed and the trial no longer tracked as running
    with coordinator.db.session() as s:
        assert s.get(LeaseRow, got["trial_id"]).finished_at is not None
        assert s.get(LeaseRow, retry["trial_id"]).finished_at is None
    assert not coordinator.leases.tracked(got["trial_id"])
    assert coordinator.leases.tracked(retry["trial_id"])


def test_the_sweep_visits_only_studies_with_trials_in_flight(client, monkeypatch):
    for name in ("done", "busy"):
        client.post(f"{API}/studies", json=study(name=name, budget=1), headers=USER)
    finished = lease(client)
    result(client, finished)
    running = lease(client)
    assert running["study"] == "busy"
    coordinator = client.app.state.coordinator
    visited = []
    active = coordinator.studies.active
    monkeypatch.setattr(coordinator.studies, "active",
                        lambda sid: visited.append(sid) or active(sid))
    assert coordinator.sweep() == 0
    with coordinator.db.session() as s:
        # (the coordinator's own sweeper thread may pass too: the same study)
        assert set(visited) == {s.get(LeaseRow, running["trial_id"]).study_id}
    assert not coordinator.leases.tracked(finished["trial_id"])  # its result closed it


def test_leases_skip_a_spent_study_once_nothing_runs_in_it(client, monkeypatch):
    client.post(f"{API}/studies", json=study(name="spent", budget=1), headers=USER)
    first = lease(client)
    assert lease(client)["trial_id"] is None  # spent, but its trial runs: it may yet retry
    result(client, first, state="failed", reason="worker lost", retry=True)
    retry = lease(client)  # the retry is found although the budget is spent
    assert retry["retry_of"] == first["number"]
    result(client, retry)
    client.post(f"{API}/studies", json=study(name="next", budget=2), headers=USER)
    coordinator = client.app.state.coordinator
    names = {coordinator.studies.row(n).study_id: n for n in ("spent", "next")}
    visited = []
    active = coordinator.studies.active
    monkeypatch.setattr(coordinator.studies, "active",
                        lambda sid: visited.append(names[sid]) or active(sid))
    assert lease(client)["study"] == "next"
    assert lease(client)["study"] == "next"
    assert visited == ["spent", "next", "next"]  # looked at once, then skipped


def test_a_study_whose_trials_keep_failing_is_stopped_with_a_reason(client):
    client.post(f"{API}/studies", json=study(name="bad", budget=5, max_failed=2),
                headers=USER)
    client.post(f"{API}/studies", json=study(name="fine", budget=5), headers=USER)
    for _ in range(2):
        got = lease(client)
        assert got["study"] == "bad"
        result(client, got, state="failed", value=None, reason="ImportError: no task code")
    bad = client.get(f"{API}/studies/bad", headers=USER).json()
    assert bad["stopped"] and bad["stop_reason"] == "2 trials failed (max_failed 2)"
    assert lease(client)["study"] == "fine"  # the others keep leasing


def test_a_study_whose_trials_keep_coming_back_is_stopped_with_a_reason(client):
    client.post(f"{API}/studies", json=study(budget=5, max_retries=1), headers=USER)
    for _ in range(2):
        result(client, lease(client), state="failed", value=None, reason="handed back",
               retry=True)
    s = client.get(f"{API}/studies/s", headers=USER).json()
    assert s["stopped"] and s["stop_reason"] == "2 trials were queued again (max_retries 1)"
    assert lease(client)["trial_id"] is None
