"""Every resource of the coordinator through the real app, good and bad input."""

import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api import API_PREFIX
from service.api.app import create_app
from service.coordinator import Coordinator
from service.db import LeaseRow
from tests.service.support import SETTINGS, USER, WORKER, service_settings, study

API = API_PREFIX


def lease(client, worker="w"):
    r = client.post(f"{API}/leases", json={"worker": worker}, headers=WORKER)
    assert r.status_code == 200, r.text
    return r.json()


def report(client, got, epoch=0, value=2.0, spectrum=None, size=8):
    body = {"lease": got["token"], "epoch": epoch, "value": value,
            "spectrum": [0.1] * size if spectrum is None else spectrum}
    # json.dumps writes NaN and Infinity (httpx's json= refuses them): what a careless client
    # would send
    return client.post(f"{API}/trials/{got['trial_id']}/reports", content=json.dumps(body),
                       headers={**WORKER, "content-type": "application/json"})


def result(client, got, state="complete", value=1.0, **kw):
    return client.post(f"{API}/trials/{got['trial_id']}/result",
                       json={"lease": got["token"], "state": state, "value": value, **kw},
                       headers=WORKER)


def test_health_is_open_and_everything_else_needs_the_right_token(client):
    assert client.get(f"{API}/health").json() == {"status": "ok", "database": "ok"}
    assert client.get(f"{API}/studies").status_code == 401
    assert client.get(f"{API}/studies", headers={"Authorization": "Bearer nope"}).status_code \
        == 401
    assert client.get(f"{API}/studies", headers=WORKER).status_code == 401  # users only
    assert client.post(f"{API}/leases", json={}, headers=USER).status_code == 401  # workers
    assert client.post(f"{API}/leases", json={}).status_code == 401
    assert client.get(f"{API}/studies", headers=USER).status_code == 200


def test_create_show_list_and_stop_a_study(client):
    r = client.post(f"{API}/studies", json=study(budget=5), headers=USER)
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["name"] == "s" and got["budget"] == 5 and got["used"] == 0
    assert got["pruner"] == "aelle" and got["counts"] == {} and got["best"] is None
    assert client.get(f"{API}/studies/s", headers=USER).json()["budget"] == 5
    assert client.get(f"{API}/studies", headers=USER).json()["count"] == 1
    spec = client.get(f"{API}/studies/s/spec", headers=USER).json()
    assert spec["settings"]["hidden"] == 8 and spec["epochs"] == 2
    assert client.post(f"{API}/studies/s/stop", headers=USER).json()["stopped"] is True
    assert client.post(f"{API}/leases", json={}, headers=WORKER).json()["trial_id"] is None
    assert client.get(f"{API}/studies/nope", headers=USER).status_code == 404


@pytest.mark.parametrize("change, status, message", [
    ({"task": "chess"}, 422, "task: unknown task 'chess'"),
    ({"search_space": {"p_gru": {"type": "float", "low": 2.0, "high": 1.0}}}, 422,
     "search_space.p_gru: low (2.0) is above high (1.0)"),
    ({"search_space": {"arch": {"type": "categorical", "choices": []}}}, 422,
     "search_space.arch: a categorical needs a non-empty list of choices"),
    ({"search_space": {"depth": {"type": "int", "low": 1, "high": 3}}}, 422,
     "search_space.depth: unknown parameter"),
    ({"search_space": {"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}}, 422,
     "search_space.lr: a log range needs low > 0"),
    ({"settings": {"hidden": 0}}, 422, "settings: hidden must be positive"),
    ({"settings": {"colour": "red"}}, 422, "settings: unknown setting"),
    ({"pruner": {"name": "aelle", "settings": {"patience": 3}}}, 422,
     "pruner.settings: unknown for aelle: patience"),
    ({"pruner": {"name": "aelle", "settings": {"quantile": 2}}}, 422, "quantile"),
    ({"pruner": {"name": "aelle", "settings": {"curve": "hyperband"}}}, 422,
     "curve must be one of none, median, study_median, got 'hyperband'"),
    ({"pruner": {"name": "aelle", "settings": {"curve_from": 0}}}, 422, "curve_from"),
    ({"pruner": {"name": "oracle"}}, 422, "pruner"),
    ({"budget": 0}, 422, "budget"),
    ({"name": "has space"}, 422, "name"),
    ({"epochs": -1}, 422, "epochs"),
])
def test_bad_studies_are_refused_naming_the_field(client, change, status, message):
    r = client.post(f"{API}/studies", json={**study(), **change}, headers=USER)
    assert r.status_code == status
    assert message in str(r.json()["detail"])
    assert client.get(f"{API}/studies", headers=USER).json()["count"] == 0  # nothing stored


def test_with_a_curve_the_learning_curve_decides_from_epoch_1(client):
    pruner = {"name": "aelle", "settings": {"curve": "median", "n_startup_trials": 2}}
    assert client.post(f"{API}/studies", json=study(pruner=pruner), headers=USER
                       ).status_code == 201
    got = lease(client)
    first = report(client, got, epoch=0).json()
    assert first["decision"] == "continue" and first["reason"].startswith("fallback: startup")
    second = report(client, got, epoch=1).json()
    assert second["decision"] == "continue"
    assert second["reason"] == "curve: MedianPruner continues"


def test_duplicate_study_name_is_a_conflict_and_the_first_survives(client):
    assert client.post(f"{API}/studies", json=study(budget=4), headers=USER).status_code == 201
    r = client.post(f"{API}/studies", json=study(budget=9), headers=USER)
    assert r.status_code == 409 and "exists" in r.json()["detail"]
    assert client.get(f"{API}/studies/s", headers=USER).json()["budget"] == 4


def test_budget_is_exact_and_no_work_is_a_normal_answer(client):
    client.post(f"{API}/studies", json=study(budget=2), headers=USER)
    a, b = lease(client), lease(client)
    assert a["trial_id"] != b["trial_id"] and a["token"] != b["token"]
    assert a["task"] == "smnist" and a["settings"]["epochs"] == 2
    assert a["settings"]["hidden"] == 8 and "arch" in a["params"]
    assert lease(client) == {"trial_id": None, "detail": "no work"}
    assert client.get(f"{API}/studies/s", headers=USER).json()["used"] == 2


def test_a_user_search_space_replaces_the_task_default_per_parameter(client):
    space = {"arch": {"type": "categorical", "choices": ["gru"]},
             "p_gru": {"type": "float", "low": 0.5, "high": 0.6}}
    client.post(f"{API}/studies", json=study(search_space=space, budget=3), headers=USER)
    for _ in range(3):
        p = lease(client)["params"]
        assert p["arch"] == "gru" and 0.5 <= p["p_gru"] <= 0.6


def test_reports_are_checked_stored_and_idempotent(client):
    client.post(f"{API}/studies", json=study(), headers=USER)
    got = lease(client)
    r = report(client, got)
    assert r.status_code == 200 and r.json()["decision"] == "continue"
    assert "startup" in r.json()["reason"]
    assert report(client, got).json() == r.json()  # the same report again: the same answer
    bad = [
        (report(client, got, epoch=0, value=3.0), 409, "already reported with other values"),
        (report(client, got, epoch=1, size=7), 422, "spectrum has 7 exponents"),
        (report(client, got, epoch=1, value=float("nan")), 422, "value must be finite"),
        (report(client, got, epoch=1, spectrum=[0.1] * 7 + [float("inf")]), 422,
         "non-finite exponents"),
        (report(client, got, epoch=9), 422, "beyond the study's 2 epochs"),
        (report(client, {**got, "token": "f" * 32}, epoch=1), 409, "not the trial's current"),
        (report(client, {**got, "trial_id": 999}, epoch=1), 404, "never leased"),
    ]
    for r, status, message in bad:
        assert r.status_code == status and message in r.json()["detail"], r.text
    detail = client.get(f"{API}/studies/s/trials/{got['number']}", headers=USER).json()
    assert [x["epoch"] for x in detail["reports"]] == [0]  # nothing rejected was stored
    assert detail["reports"][0]["value"] == 2.0 and detail["reports"][0]["spectrum"] == [0.1] * 8


def test_odd_ids_and_leases_found_by_fuzzing_are_client_errors(client):
    client.post(f"{API}/studies", json=study(), headers=USER)
    got = lease(client)
    assert report(client, {**got, "token": "\u0080"}).status_code == 409
    big = {**got, "trial_id": 2**63}
    assert report(client, big).status_code == 422
    r = client.post(f"{API}/trials/{2**63}/heartbeat", json={"lease": "x"}, headers=WORKER)
    assert r.status_code == 422
    assert client.get(f"{API}/studies/s/trials/{2**63}", headers=USER).status_code == 422


def test_results_complete_diverged_failed_and_repeats(client):
    client.post(f"{API}/studies", json=study(budget=3), headers=USER)
    a, b, c = lease(client), lease(client), lease(client)
    report(client, a)
    assert result(client, a, value=None).status_code == 422
    assert result(client, a, value=0.5).json()["state"] == "complete"
    assert result(client, a, value=0.5).json()["state"] == "complete"  # idempotent
    assert result(client, a, value=0.7).status_code == 409
    assert report(client, a, epoch=1).status_code == 409  # finished: no more reports
    d = result(client, b, state="diverged", value=None, reason="epoch 1: loss is nan")
    assert d.json()["state"] == "diverged"
    f = result(client, c, state="failed", value=None, reason="CUDA out of memory")
    assert f.json()["state"] == "failed"
    trials = {t["number"]: t for t in client.get(f"{API}/studies/s/trials",
                                                 headers=USER).json()["data"]}
    assert trials[b["number"]]["reason"] == "epoch 1: loss is nan"
    assert trials[c["number"]]["reason"] == "CUDA out of memory"
    s = client.get(f"{API}/studies/s", headers=USER).json()
    assert s["counts"] == {"complete": 1, "diverged": 1, "failed": 1}
    assert s["best"]["value"] == 0.5 and s["used"] == 3


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


def test_trials_are_ranked_filtered_and_cut(client):
    client.post(f"{API}/studies", json=study(budget=4), headers=USER)
    values = [3.0, 1.0, 2.0]
    for v in values:
        got = lease(client)
        report(client, got, value=v + 1)
        result(client, got, value=v)
    running = lease(client)
    report(client, running, value=9.0)
    ranked = client.get(f"{API}/studies/s/trials", headers=USER).json()["data"]
    assert [t["value"] for t in ranked] == [1.0, 2.0, 3.0, None]
    assert ranked[-1]["state"] == "running" and ranked[-1]["last_value"] == 9.0
    assert ranked[0]["epochs"] == 1 and ranked[0]["max_le"] == pytest.approx(0.1)
    assert ranked[0]["started_at"] <= ranked[0]["finished_at"] <= ranked[-1]["started_at"]
    assert ranked[-1]["finished_at"] is None
    top = client.get(f"{API}/studies/s/trials?top=2&state=complete", headers=USER).json()
    assert top["count"] == 2 and [t["value"] for t in top["data"]] == [1.0, 2.0]
    assert client.get(f"{API}/studies/s/trials?state=odd", headers=USER).status_code == 422
    assert client.get(f"{API}/studies/s/trials/99", headers=USER).status_code == 404


def test_model_status_before_any_model(client):
    client.post(f"{API}/studies", json=study(), headers=USER)
    status = client.get(f"{API}/studies/s/model", headers=USER).json()
    assert status == {"pruner": "aelle", "fitting": False, "in_use": None, "models_kept": 0,
                      "latest": None}
    assert client.get(f"{API}/studies/s/model/bytes", headers=USER).status_code == 404


FAST_MODEL = {"dim": 16, "hidden": [16], "latent": 4, "epochs": 60, "warmup_epochs": 20,
              "ramp_epochs": 20, "components": 2, "seed": 0}
GRU = {"arch": {"type": "categorical", "choices": ["gru"]}}


def test_a_study_pretrained_on_a_previous_one_prunes_from_its_first_report(client, settings):
    aelle = {"name": "aelle", "settings": {"n_startup_trials": 2, "retrain_every": 1,
                                           "explore": 0.0, "config": FAST_MODEL}}
    client.post(f"{API}/studies", json=study("src", budget=4, pruner=aelle, search_space=GRU),
                headers=USER)
    for q in (0.0, 0.3, 0.6, 1.0):  # a flatter spectrum ends with the lower loss
        got = lease(client)
        for epoch in range(3):
            z = [0.05 - (0.3 + q) * i / 7 for i in range(8)]
            assert report(client, got, epoch, 3.0 + q - epoch / 4, z).status_code == 200
        assert result(client, got, value=1.0 + 2 * q).status_code == 200
    client.app.state.coordinator.wait_for_models()
    assert client.get(f"{API}/studies/src/model", headers=USER).json()["latest"]

    def pretrained(name, source, **kw):
        pruner = {"name": "aelle", "settings": {"pretrained": source, "explore": 0.0,
                                                "n_startup_trials": 4}}
        return client.post(f"{API}/studies", headers=USER,
                           json=study(name, pruner=pruner, search_space=GRU, **kw))

    client.post(f"{API}/studies", json=study("s0"), headers=USER)
    for r, message in [(pretrained("x", "nope"), "no study named 'nope'"),
                       (pretrained("x", "s0"), "has no AeLLE model yet"),
                       (pretrained("x", "src", direction="maximize"), "minimize study"),
                       (pretrained("x", ""), "give the name of a previous study")]:
        assert r.status_code == 422 and "pruner.settings.pretrained" in r.json()["detail"]
        assert message in r.json()["detail"], r.text
    assert pretrained("dst", "src").status_code == 201
    client.post(f"{API}/studies/s0/stop", headers=USER)
    got = lease(client)
    assert got["study"] == "dst"
    bad = report(client, got, 0, 3.0, [0.05 - 1.3 * i / 7 for i in range(8)]).json()
    assert bad["decision"] == "prune" and bad["prediction"] is not None, bad
    assert bad["reason"].startswith("prune: predicted final")
    model = client.get(f"{API}/studies/src/model", headers=USER).json()["latest"]["version"]
    assert bad["model"] == model
    # a restarted coordinator's cut counts the trial pruned before, by its prediction
    again = Coordinator(settings)
    nxt = again.lease("w")
    answer = again.report(nxt.trial_id, nxt.token, 0, 3.0, [0.05 - 0.3 * i / 7 for i in range(8)])
    finals = [1.0 + 2 * q for q in (0.0, 0.3, 0.6, 1.0)]
    cut = float(answer.reason.rsplit("the cut ", 1)[1])
    assert cut == pytest.approx(float(np.median([*finals, bad["prediction"]])), rel=1e-3)
    assert cut != pytest.approx(float(np.median(finals)), rel=1e-3)  # forgotten, it would be


def test_oversized_and_malformed_bodies_are_refused(client):
    big = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    r = client.post(f"{API}/studies", content=big,
                    headers={**USER, "content-type": "application/json"})
    assert r.status_code == 413
    r = client.post(f"{API}/studies", content=b"{not json",
                    headers={**USER, "content-type": "application/json"})
    assert r.status_code == 422
    r = client.post(f"{API}/studies", json={**study(), "colour": "red"}, headers=USER)
    assert r.status_code == 422 and "colour" in str(r.json()["detail"])


def test_openapi_documents_every_resource(client):
    paths = client.get(f"{API}/openapi.json", headers=USER).json()["paths"]
    for path in ("/api/v1/studies", "/api/v1/studies/{name}/trials", "/api/v1/leases",
                 "/api/v1/trials/{trial_id}/reports", "/api/v1/trials/{trial_id}/result",
                 "/api/v1/trials/{trial_id}/heartbeat", "/api/v1/studies/{name}/model",
                 "/api/v1/health"):
        assert path in paths
    assert SETTINGS  # the shared tiny settings are what studies here run with


def test_only_health_answers_without_a_token(client):
    assert client.get(f"{API}/health").status_code == 200
    for path in ("/openapi.json", "/docs", "/redoc"):  # not served unless asked for
        assert client.get(path).status_code == 404, path
    r = client.get(f"{API}/openapi.json")
    assert r.status_code == 401 and "user token" in r.json()["detail"]
    assert client.get(f"{API}/openapi.json", headers=WORKER).status_code == 401


def test_public_docs_serve_the_schema_and_its_pages(tmp_path):
    settings = service_settings(f"sqlite:///{tmp_path}/docs.db").model_copy(
        update={"public_docs": True})
    with TestClient(create_app(settings)) as open_client:
        assert "/api/v1/studies" in open_client.get("/openapi.json").json()["paths"]
        assert "swagger" in open_client.get("/docs").text.lower()
        assert open_client.get(f"{API}/studies").status_code == 401  # the data stays closed


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
