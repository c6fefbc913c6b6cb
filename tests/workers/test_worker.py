"""A real worker against a real uvicorn coordinator (in this process: threads)."""

import httpx
import pytest

from tests.service.support import USER, service_settings, serving, study
from workers.client import CoordinatorClient, LeaseLost, Rejected, Unreachable
from workers.runtime import Worker

API = "/api/v1"


def submit(url, **kw):
    r = httpx.post(f"{url}{API}/studies", json=study(**kw), headers=USER)
    assert r.status_code == 201, r.text


def ranked(url, name="s"):
    return httpx.get(f"{url}{API}/studies/{name}/trials", headers=USER).json()["data"]


def test_burst_worker_finishes_a_study_and_the_pruner_acts(server):
    pruner = {"name": "median", "settings": {"n_startup_trials": 2, "n_warmup_steps": 0}}
    submit(server, budget=6, epochs=3, pruner=pruner)
    client = CoordinatorClient(server, "worker-secret")
    counts = Worker(client, name="t", burst=True, progress=False).run()
    client.close()
    trials = ranked(server)
    assert len(trials) == 6 and sum(counts.values()) == 6
    assert {t["state"] for t in trials} <= {"complete", "pruned", "diverged"}
    done = [t for t in trials if t["state"] == "complete"]
    assert all(t["epochs"] == 4 for t in done)  # epochs 0..3 reported
    assert [t["value"] for t in done] == sorted(t["value"] for t in done)  # ranked
    for t in trials:
        if t["state"] == "pruned":
            assert t["epochs"] < 4  # stopped early


def test_two_concurrent_slots_share_the_budget_exactly(server):
    submit(server, budget=5, epochs=1)
    client = CoordinatorClient(server, "worker-secret")
    counts = Worker(client, name="t", concurrency=2, burst=True, progress=False).run()
    client.close()
    assert sum(counts.values()) == 5 and len(ranked(server)) == 5


def test_a_stopped_worker_hands_its_trial_back(server):
    submit(server, budget=1, epochs=3)
    client = CoordinatorClient(server, "worker-secret")
    worker = Worker(client, name="t", burst=True, progress=False)
    original = client.report

    def report_then_stop(*args, **kw):
        answer = original(*args, **kw)
        worker.stop()  # as SIGTERM does, during the first epoch
        return answer

    client.report = report_then_stop
    counts = worker.run()
    assert counts == {"failed": 1}
    trials = ranked(server)
    assert {t["state"] for t in trials} == {"failed", "waiting"}  # queued again, same params
    assert trials[0]["params"] == trials[1]["params"]
    client.close()


def test_client_errors_are_typed(tmp_path):
    with serving(service_settings(f"sqlite:///{tmp_path}/a.db")) as url:
        client = CoordinatorClient(url, "wrong")
        with pytest.raises(Rejected, match="401"):
            client.lease("t")
        good = CoordinatorClient(url, "worker-secret")
        with pytest.raises(LeaseLost, match="409"):
            httpx.post(f"{url}{API}/studies", json=study(budget=1), headers=USER)
            got = good.lease("t")
            good.report(got["trial_id"], "0" * 32, 0, 1.0, [0.1] * 8)
    gone = CoordinatorClient(url, "worker-secret", patience=1.0)
    with pytest.raises(Unreachable, match="gave up"):
        gone.lease("t")
    with pytest.raises(ValueError, match="token"):
        CoordinatorClient(url, "")
    with pytest.raises(ValueError, match="http"):
        CoordinatorClient("localhost:8000", "t")
