"""Trained networks: uploaded by a real worker, stored, kept for the best trials, downloaded
and rebuilt; the upload's refusals leave what is stored as it was."""

import hashlib

import httpx
import pytest
from fastapi.testclient import TestClient

import aelle
from service.api.app import create_app
from tasks import run_trial
from tasks.artifacts import pack, unpack
from tests.service.support import (
    API,
    USER,
    WORKER,
    lease,
    patient_settings,
    result,
    service_settings,
    serving,
)
from tests.service.support import study as study_spec
from workers.client import CoordinatorClient
from workers.runtime import Worker


def network_of(got: dict) -> bytes:
    """The artifact a worker would upload for the leased trial ``got``."""
    trained = run_trial(got["task"], got["params"], got["settings"], seed=got["number"])
    return pack(trained.run, got["task"], got["params"], got["settings"], seed=got["number"],
                value=trained.value, meta={"study": got["study"], "number": got["number"]})


@pytest.fixture
def patient(tmp_path):
    with TestClient(create_app(patient_settings(f"sqlite:///{tmp_path}/p.db"))) as client:
        yield client


def put(client, got, data, lease_token=None, sha=True, headers=WORKER):
    h = {**headers, "X-AeLLE-Lease": lease_token or got["token"],
         "content-type": "application/octet-stream"}
    if sha:
        h["X-AeLLE-SHA256"] = hashlib.sha256(data).hexdigest()
    return client.put(f"{API}/trials/{got['trial_id']}/artifact", content=data, headers=h)


def test_a_real_worker_keeps_the_best_networks_and_one_evaluates_to_its_loss(tmp_path):
    settings = service_settings(f"sqlite:///{tmp_path}/a.db", artifacts_kept=2)
    with serving(settings) as url:
        httpx.post(f"{url}{API}/studies", json=study_spec(budget=4, epochs=1),
                   headers=USER).raise_for_status()
        client = CoordinatorClient(url, "worker-secret-for-tests")
        counts = Worker(client, name="w", burst=True, progress=False).run()
        client.close()
        assert sum(counts.values()) == 4
        trials = httpx.get(f"{url}{API}/studies/s/trials", headers=USER).json()["data"]
        done = [t for t in trials if t["state"] == "complete"]
        assert len(done) == 4
        got = {t["number"]: httpx.get(f"{url}{API}/studies/s/trials/{t['number']}/artifact",
                                      headers=USER) for t in done}
        kept = [t for t in done if got[t["number"]].status_code == 200]
        assert [t["number"] for t in kept] == [t["number"] for t in done[:2]]  # the best two
        assert all(got[t["number"]].status_code == 404 for t in done[2:])
        assert "best 2" in got[done[3]["number"]].json()["detail"]
        # a trial's detail links to its network while one is kept (the page offers it)
        links = {t["number"]: httpx.get(f"{url}{API}/studies/s/trials/{t['number']}",
                                        headers=USER).json()["links"] for t in done}
        assert links[done[0]["number"]] == {
            "trained network": f"/studies/s/trials/{done[0]['number']}/artifact"}
        assert links[done[3]["number"]] == {}
    assert len(list((tmp_path / "a.db.artifacts").iterdir())) == 2  # the others' were deleted
    best = got[done[0]["number"]]
    assert best.headers["x-aelle-sha256"] == hashlib.sha256(best.content).hexdigest()
    run = aelle.load_trial_run(best.content)
    assert run.validate() == pytest.approx(done[0]["value"], rel=1e-6)
    net = aelle.load_trial_model(best.content)
    assert sum(p.numel() for p in net.parameters()) > 0
    model = unpack(best.content)
    assert model.params == done[0]["params"] and model.meta["number"] == done[0]["number"]


def test_an_upload_is_checked_and_a_refused_one_changes_nothing(patient):
    client = patient
    assert client.post(f"{API}/studies", json=study_spec(budget=2), headers=USER).status_code \
        == 201
    got = lease(client)
    data = network_of(got)
    assert put(client, got, data, headers=USER).status_code == 401  # workers only
    assert put(client, got, data, lease_token="f" * 32).status_code == 409  # not its lease
    r = put(client, got, data[:-10], sha=False)
    assert r.status_code == 422 and "not a trial model" in r.json()["detail"]
    h = {**WORKER, "X-AeLLE-Lease": got["token"], "X-AeLLE-SHA256": "0" * 64}
    r = client.put(f"{API}/trials/{got['trial_id']}/artifact", content=data, headers=h)
    assert r.status_code == 422 and "SHA-256" in r.json()["detail"]
    other = lease(client)
    r = put(client, got, network_of(other))  # another trial's parameters
    assert r.status_code == 422 and "parameters" in r.json()["detail"]

    first = put(client, got, data)
    assert first.status_code == 200 and first.json()["size"] == len(data)
    assert put(client, got, data).json() == first.json()  # the same again: idempotent
    r = put(client, got, network_of(other))
    assert r.status_code in (409, 422)
    assert result(client, got, value=1.0).status_code == 200
    stored = client.get(f"{API}/studies/s/trials/{got['number']}/artifact", headers=USER)
    assert stored.status_code == 200 and stored.content == data
    assert put(client, got, data).json() == first.json()  # still idempotent once complete
    r = put(client, other, network_of(other))
    assert r.status_code == 200
    assert result(client, other, state="failed", value=None, reason="boom").status_code == 200
    # a trial that did not complete keeps no network
    r = client.get(f"{API}/studies/s/trials/{other['number']}/artifact", headers=USER)
    assert r.status_code == 404
    assert client.get(f"{API}/studies/nope/trials/0/artifact", headers=USER).status_code == 404


def test_an_upload_over_the_cap_is_refused_with_413(tmp_path):
    settings = service_settings(f"sqlite:///{tmp_path}/c.db", artifact_max_bytes=2048)
    with TestClient(create_app(settings)) as client:
        client.post(f"{API}/studies", json=study_spec(), headers=USER).raise_for_status()
        got = lease(client)
        r = put(client, got, b"x" * 4096)
        assert r.status_code == 413 and "2048" in r.json()["detail"]
        # other bodies keep their own limit
        r = client.post(f"{API}/studies", content=b'{"name": "' + b"x" * (2 << 20) + b'"}',
                        headers={**USER, "content-type": "application/json"})
        assert r.status_code == 413


def test_a_store_that_fails_answers_503_and_records_nothing(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's directory should be")
    settings = patient_settings(f"sqlite:///{tmp_path}/f.db", artifact_dir=str(blocked))
    with TestClient(create_app(settings)) as client:
        client.post(f"{API}/studies", json=study_spec(), headers=USER).raise_for_status()
        got = lease(client)
        data = network_of(got)
        r = put(client, got, data)
        assert r.status_code == 503 and "artifact store" in r.json()["detail"]
        assert "retry-after" in r.headers
        blocked.unlink()  # the store comes back: the same upload now goes through
        assert put(client, got, data).status_code == 200
        assert result(client, got).status_code == 200
        r = client.get(f"{API}/studies/s/trials/{got['number']}/artifact", headers=USER)
        assert r.content == data
