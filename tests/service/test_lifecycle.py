"""A study's lifecycle over HTTP: delete, resume, raise the budget, queue failed trials again,
and what each refuses."""

import pytest
from sqlalchemy import create_engine, text

from tests.service.support import API, USER, lease, report, result, study


def create(client, **kw):
    r = client.post(f"{API}/studies", json=study(**kw), headers=USER)
    assert r.status_code == 201, r.text


def summary(client, name="s"):
    return client.get(f"{API}/studies/{name}", headers=USER).json()


def no_work(client):
    from tests.service.support import WORKER

    return client.post(f"{API}/leases", json={"worker": "w"}, headers=WORKER).json()[
        "trial_id"] is None


@pytest.mark.parametrize("method,path,body", [
    ("DELETE", "", None), ("POST", "/resume", None), ("POST", "/budget", {"budget": 9}),
    ("POST", "/requeue", None)])
def test_an_unknown_study_is_404_and_users_only(client, method, path, body):
    r = client.request(method, f"{API}/studies/nope{path}", json=body, headers=USER)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    from tests.service.support import WORKER

    assert client.request(method, f"{API}/studies/nope{path}", json=body,
                          headers=WORKER).status_code == 401


def test_delete_refuses_while_trials_run_then_takes_everything(client, settings):
    create(client, budget=2)
    got = lease(client)
    assert report(client, got).status_code == 200
    r = client.delete(f"{API}/studies/s", headers=USER)
    assert r.status_code == 409 and "running" in r.json()["detail"]
    assert result(client, got, value=1.0).status_code == 200
    r = client.delete(f"{API}/studies/s", headers=USER)
    assert r.status_code == 200 and r.json() == {"name": "s", "trials": 1, "artifacts": 0,
                                                "explains": 0}
    assert client.get(f"{API}/studies/s", headers=USER).status_code == 404
    assert client.delete(f"{API}/studies/s", headers=USER).status_code == 404
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        for table in ("aelle_studies", "aelle_leases", "aelle_reports", "aelle_models",
                      "aelle_artifacts", "studies", "trials"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
    engine.dispose()
    create(client, budget=1)  # the name is free again, with a budget of its own
    assert summary(client)["used"] == 0 and lease(client)["number"] == 0


def test_resume_only_a_stopped_study(client):
    create(client, budget=3)
    r = client.post(f"{API}/studies/s/resume", headers=USER)
    assert r.status_code == 409 and "not stopped" in r.json()["detail"]
    assert client.post(f"{API}/studies/s/stop", headers=USER).json()["stopped"] is True
    assert no_work(client)
    r = client.post(f"{API}/studies/s/resume", headers=USER)
    assert r.status_code == 200 and r.json()["stopped"] is False
    assert lease(client)["study"] == "s"


def test_raising_the_budget_gives_a_spent_study_work_again(client):
    create(client, budget=1)
    got = lease(client)
    assert result(client, got, value=1.0).status_code == 200
    assert no_work(client)  # spent
    for body in ({"budget": 1}, {"budget": 0}, {"budget": "many"}, {"budgte": 4}, {}):
        r = client.post(f"{API}/studies/s/budget", json=body, headers=USER)
        assert r.status_code == 422, body
    r = client.post(f"{API}/studies/s/budget", json={"budget": 2}, headers=USER)
    assert r.status_code == 200 and r.json()["budget"] == 2
    assert lease(client)["number"] == 1
    assert no_work(client)


def test_requeue_runs_failed_trials_again_without_budget(client):
    create(client, budget=2)
    a, b = lease(client), lease(client)
    assert result(client, a, state="failed", value=None, reason="oom").status_code == 200
    assert result(client, b, value=1.0).status_code == 200
    assert no_work(client)
    r = client.post(f"{API}/studies/s/requeue", headers=USER)
    assert r.status_code == 200 and r.json()["requeued"] == [a["number"]]
    assert r.json()["study"]["counts"]["waiting"] == 1
    again = lease(client)
    assert again["params"] == a["params"] and again["retry_of"] == a["number"]
    assert summary(client)["used"] == 2  # the retry replaces the failed trial
    # nothing failed is left unretried: a second requeue queues nothing
    assert client.post(f"{API}/studies/s/requeue", headers=USER).json()["requeued"] == []


def test_a_quarantined_study_refuses_resume_budget_and_requeue_but_can_be_deleted(client):
    create(client, budget=2)
    coordinator = client.app.state.coordinator
    coordinator.studies.quarantine(coordinator.studies.row("s").study_id, "a broken spec")
    for path, body in (("/resume", None), ("/budget", {"budget": 5}), ("/requeue", None)):
        r = client.post(f"{API}/studies/s{path}", json=body, headers=USER)
        assert r.status_code == 409 and "quarantined" in r.json()["detail"], path
    assert client.delete(f"{API}/studies/s", headers=USER).status_code == 200


def test_delete_refuses_a_study_another_takes_its_model_from(client):
    create(client, budget=1)
    coordinator = client.app.state.coordinator
    spec = {**study(name="b"), "pruner": {"name": "aelle", "settings": {"pretrained": "s"}}}
    from service.db import StudyRow

    with coordinator.db.session() as s:  # as a study created once "s" had a model stands
        s.add(StudyRow(study_id=999, name="b", spec=spec, budget=1))
    r = client.delete(f"{API}/studies/s", headers=USER)
    assert r.status_code == 409 and "pretrained model of b" in r.json()["detail"]
    assert client.delete(f"{API}/studies/b", headers=USER).status_code == 200
    assert client.delete(f"{API}/studies/s", headers=USER).status_code == 200
