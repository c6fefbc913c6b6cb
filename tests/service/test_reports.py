"""The report and result paths through the API: checks, idempotence, the pruner's decisions."""

import numpy as np
import pytest

from service.coordinator import Coordinator
from tests.service.support import API, USER, WORKER, lease, report, result, study


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
         "non-finite"),
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
