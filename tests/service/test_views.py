"""What the page at /ui reads: learning curves, the AeLLE plane, model versions, compute
saved; the summaries left on Optuna's trials; the page and its assets served."""

import optuna
import pytest

from aelle.model import AeLLE
from service.ui import PLOTTING
from tests.service.support import API, USER, WORKER, lease, report, result, study

FAST_MODEL = {"dim": 16, "hidden": [16], "latent": 4, "epochs": 60, "warmup_epochs": 20,
              "ramp_epochs": 20, "components": 2, "seed": 0}
GRU = {"arch": {"type": "categorical", "choices": ["gru"]}}


def spectrum(q):
    return [0.05 - (0.3 + q) * i / 7 for i in range(8)]


def finish_four(client, name="s"):
    """Four complete trials of three epochs, a flatter spectrum ending with the lower loss."""
    for q in (0.0, 0.3, 0.6, 1.0):
        got = lease(client)
        for epoch in range(3):
            assert report(client, got, epoch, 3.0 + q - epoch / 4, spectrum(q)).status_code \
                == 200
        assert result(client, got, value=1.0 + 2 * q).status_code == 200


def test_curves_hold_every_epoch_by_trial_number_and_page(client):
    client.post(f"{API}/studies", json=study(budget=3, epochs=4), headers=USER)
    a, b = lease(client), lease(client)
    for epoch, value in enumerate([3.0, 2.5, 2.0]):
        report(client, a, epoch, value)
    report(client, b, 0, 4.0)
    got = client.get(f"{API}/studies/s/curves", headers=USER).json()
    assert got["count"] == 2
    assert got["data"] == [
        {"number": 0, "state": "running", "epochs": [0, 1, 2], "values": [3.0, 2.5, 2.0]},
        {"number": 1, "state": "running", "epochs": [0], "values": [4.0]}]
    page = client.get(f"{API}/studies/s/curves?limit=1&offset=1", headers=USER).json()
    assert [c["number"] for c in page["data"]] == [1] and page["count"] == 2
    assert client.get(f"{API}/studies/s/curves", headers=WORKER).status_code == 401
    assert client.get(f"{API}/studies/nope/curves", headers=USER).status_code == 404
    assert client.get(f"{API}/studies/s/curves?limit=0", headers=USER).status_code == 422


def test_compute_saved_counts_the_epochs_pruned_and_diverged_trials_did_not_train(client):
    client.post(f"{API}/studies", json=study(budget=4, epochs=4), headers=USER)
    full, diverged, failed = lease(client), lease(client), lease(client)
    for epoch in range(5):
        report(client, full, epoch, 2.0)
    result(client, full, value=1.0)
    report(client, diverged, 0, 2.0)
    report(client, diverged, 1, 2.0)
    result(client, diverged, state="diverged", value=None, reason="loss is nan")
    report(client, failed, 0, 2.0)
    result(client, failed, state="failed", value=None, reason="out of memory")
    s = client.get(f"{API}/studies/s", headers=USER).json()
    assert s["epochs_per_trial"] == 4
    assert s["epochs_saved"] == 3  # 5 reports a full trial makes, 2 made by the diverged one
    assert s["epochs_trained"] == 5 + 2 + 1


def test_the_plane_uses_the_studys_aelle_model_once_it_has_one(client):
    aelle = {"name": "aelle", "settings": {"n_startup_trials": 2, "retrain_every": 1,
                                           "explore": 0.0, "config": FAST_MODEL}}
    client.post(f"{API}/studies", json=study(budget=7, pruner=aelle, search_space=GRU),
                headers=USER)
    empty = client.get(f"{API}/studies/s/plane", headers=USER).json()
    assert empty == {"basis": "none", "data": [], "count": 0, "offset": 0, "limit": None}
    got = lease(client)
    report(client, got, 0, 3.0, spectrum(0.0))
    alone = client.get(f"{API}/studies/s/plane", headers=USER).json()
    assert alone == empty  # one spectrum spans no plane
    result(client, got, value=1.0)
    for q in (0.3, 0.6):
        got = lease(client)
        report(client, got, 0, 3.0 + q, spectrum(q))
        result(client, got, value=1.0 + 2 * q)
    coordinator = client.app.state.coordinator
    finish_four(client)
    coordinator.wait_for_models()
    plane = client.get(f"{API}/studies/s/plane", headers=USER).json()
    latest = client.get(f"{API}/studies/s/model", headers=USER).json()["latest"]
    assert plane["basis"] == f"aelle {latest['version']}" and plane["count"] == 7
    assert {p["state"] for p in plane["data"]} == {"complete"}
    by = {p["number"]: p for p in plane["data"]}
    assert by[0]["epoch"] == 0 and by[3]["epoch"] == 2
    # each point is the model's own embedding of the trial's latest spectrum, with the
    # decision stored beside it
    blob = client.get(f"{API}/studies/s/model/bytes", headers=USER).content
    model = AeLLE.from_bytes(blob)
    for number, point in by.items():
        last = client.get(f"{API}/studies/s/trials/{number}", headers=USER).json()["reports"][-1]
        assert point["epoch"] == last["epoch"] and point["decision"] == last["decision"]
        x, y = model.embed([last["spectrum"]])[0][:2]
        # (the network runs in float32: a batch of one and of seven differ in the 7th digit)
        assert (point["x"], point["y"]) == pytest.approx((x, y), rel=1e-5, abs=1e-6)
    page = client.get(f"{API}/studies/s/plane?limit=2&offset=4", headers=USER).json()
    assert [p["number"] for p in page["data"]] == [4, 5] and page["count"] == 7
    versions = client.get(f"{API}/studies/s/models", headers=USER).json()
    assert versions["count"] >= 1 and versions["data"][-1]["version"] == latest["version"]
    assert [v["created_at"] for v in versions["data"]] == sorted(
        v["created_at"] for v in versions["data"])
    assert client.get(f"{API}/studies/s/models?limit=1", headers=USER).json()["count"] \
        == versions["count"]


def test_before_any_model_the_plane_is_the_spectras_own(client):
    client.post(f"{API}/studies", json=study(budget=3, pruner={"name": "none"}), headers=USER)
    for q in (0.0, 0.5, 1.0):
        got = lease(client)
        report(client, got, 0, 3.0 + q, spectrum(q))
    plane = client.get(f"{API}/studies/s/plane", headers=USER).json()
    assert plane["basis"] == "pca of the spectra" and plane["count"] == 3
    xs = [p["x"] for p in plane["data"]]  # the spectra differ along one line: PC 1 orders it
    assert xs == sorted(xs) or xs == sorted(xs, reverse=True)
    assert max(abs(p["y"]) for p in plane["data"]) < 1e-6 * max(abs(x) for x in xs)


def test_each_trial_carries_its_latest_summary_as_one_optuna_attribute(client, settings):
    client.post(f"{API}/studies", json=study(budget=2, epochs=3), headers=USER)
    a, b = lease(client), lease(client)
    for epoch in range(3):
        report(client, a, epoch, 2.0, [0.2] + [-0.1] * 7)
    report(client, b, 0, 2.0)
    result(client, b, state="diverged", value=None, reason="loss is nan")
    trials = optuna.load_study(study_name="s", storage=settings.database_url).trials
    attrs = {t.number: t.user_attrs for t in trials}
    latest = attrs[a["number"]]["aelle:latest"]
    assert latest["epoch"] == 2 and latest["decision"] == "continue"
    assert latest["max_le"] == pytest.approx(0.2)
    assert latest["mean_le"] == pytest.approx((0.2 - 0.7) / 8)
    assert "prediction" in latest
    assert not any(k.startswith("aelle:spectrum") for k in attrs[a["number"]])
    # Optuna holds a diverged trial as pruned: the attribute tells it apart
    assert trials[b["number"]].state == optuna.trial.TrialState.PRUNED
    assert attrs[b["number"]]["aelle:outcome"] == "diverged"
    assert attrs[b["number"]]["aelle:reason"] == "loss is nan"


def test_the_page_and_its_assets_are_served_without_a_token(client):
    page = client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    name, version = PLOTTING
    assert f"/ui/static/vendor/{name}-{version}.iife.min.js" in page.text
    assert 'label for="token"' in page.text
    for asset in ("app.js", "plots.js", "ui.css", f"vendor/{name}-{version}.iife.min.js",
                  f"vendor/{name}-{version}.min.css", "vendor/uPlot-LICENSE"):
        r = client.get(f"/ui/static/{asset}")
        assert r.status_code == 200 and r.content, asset
    assert "MIT License" in client.get("/ui/static/vendor/uPlot-LICENSE").text
    assert client.get("/ui/static/nope.js").status_code == 404
    assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui"
