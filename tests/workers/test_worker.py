"""A real worker against a real uvicorn coordinator (in this process: threads)."""

import argparse

import httpx
import pytest
import torch

from tests.service.support import USER, service_settings, serving, study
from workers.cli import add_worker_parser, settings_from
from workers.client import API_PREFIX as API
from workers.client import CoordinatorClient, LeaseLost, Rejected, Unreachable
from workers.runtime import Outcome, Worker


def submit(url, **kw):
    r = httpx.post(f"{url}{API}/studies", json=study(**kw), headers=USER)
    assert r.status_code == 201, r.text


def ranked(url, name="s"):
    return httpx.get(f"{url}{API}/studies/{name}/trials", headers=USER).json()["data"]


def test_burst_worker_finishes_a_study_and_the_pruner_acts(server):
    pruner = {"name": "median", "settings": {"n_startup_trials": 2, "n_warmup_steps": 0}}
    submit(server, budget=6, epochs=3, pruner=pruner)
    client = CoordinatorClient(server, "worker-secret-for-tests")
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


def test_a_planned_screens_finalist_trains_the_network_that_was_screened(server):
    submit(server, budget=4, epochs=1, pruner={"name": "joint", "settings": {"finalists": 1}})
    client = CoordinatorClient(server, "worker-secret-for-tests")
    counts = Worker(client, name="t", burst=True, progress=False).run()
    client.close()
    assert counts == {Outcome.PRUNED: 4, Outcome.COMPLETE: 1}
    [final] = [t for t in ranked(server) if t["state"] == "complete"]
    assert final["number"] == 4 and final["retry_of"] in range(4)

    def first_loss(number):
        detail = httpx.get(f"{server}{API}/studies/s/trials/{number}", headers=USER).json()
        return detail["reports"][0]["value"]

    losses = [first_loss(n) for n in range(4)]
    assert len(set(losses)) == 4  # each seed its own untrained network
    assert first_loss(4) == losses[final["retry_of"]]  # and the finalist the screened one


def test_two_concurrent_slots_share_the_budget_exactly(server):
    submit(server, budget=5, epochs=1)
    client = CoordinatorClient(server, "worker-secret-for-tests")
    threads = torch.get_num_threads()
    counts = Worker(client, name="t", concurrency=2, burst=True, progress=False).run()
    client.close()
    assert sum(counts.values()) == 5 and len(ranked(server)) == 5
    assert torch.get_num_threads() == threads  # the process's threads are the caller's


def test_a_stopped_worker_hands_its_trial_back(server):
    submit(server, budget=1, epochs=3)
    client = CoordinatorClient(server, "worker-secret-for-tests")
    worker = Worker(client, name="t", burst=True, progress=False)
    original = client.report

    def report_then_stop(*args, **kw):
        answer = original(*args, **kw)
        worker.stop()  # as SIGTERM does, during the first epoch
        return answer

    client.report = report_then_stop
    counts = worker.run()
    assert counts == {Outcome.FAILED: 1}
    trials = ranked(server)
    assert {t["state"] for t in trials} == {"failed", "waiting"}  # queued again, same params
    assert trials[0]["params"] == trials[1]["params"]
    client.close()


def stop_during_epoch(worker, client, at: int, times: int = 1):
    """Stop ``worker`` ``times`` over (as SIGTERM does) once epoch ``at`` has been reported."""
    original = client.report

    def report_then_stop(trial_id, lease, epoch, *args, **kw):
        answer = original(trial_id, lease, epoch, *args, **kw)
        if epoch == at:
            for _ in range(times):
                worker.stop()
        return answer

    client.report = report_then_stop


def test_a_worker_stopped_with_finish_ends_its_trial_and_takes_no_more(server):
    submit(server, budget=3, epochs=3, pruner={"name": "none"})
    client = CoordinatorClient(server, "worker-secret-for-tests")
    worker = Worker(client, name="t", burst=True, progress=False, on_stop="finish")
    stop_during_epoch(worker, client, at=1)
    counts = worker.run()
    client.close()
    assert counts == {Outcome.COMPLETE: 1}
    (trial,) = ranked(server)  # no second lease; nothing queued again
    assert trial["state"] == "complete" and trial["epochs"] == 4  # epochs 0..3, all reported


def test_a_second_stop_hands_a_finishing_trial_back(server):
    submit(server, budget=1, epochs=3, pruner={"name": "none"})
    client = CoordinatorClient(server, "worker-secret-for-tests")
    worker = Worker(client, name="t", burst=True, progress=False, on_stop="finish")
    stop_during_epoch(worker, client, at=1, times=2)
    assert worker.run() == {Outcome.FAILED: 1}
    client.close()
    assert {t["state"] for t in ranked(server)} == {"failed", "waiting"}


def test_flags_override_the_environment(monkeypatch):
    parser = argparse.ArgumentParser()
    add_worker_parser(parser.add_subparsers(dest="command"))
    monkeypatch.setenv("AELLE_URL", "http://coordinator:8000")
    monkeypatch.setenv("AELLE_WORKER_TOKEN", "from-env")
    monkeypatch.setenv("AELLE_CONCURRENCY", "3")
    monkeypatch.setenv("AELLE_ON_STOP", "finish")
    s = settings_from(parser.parse_args(["worker", "--concurrency", "2"]))
    assert (s.url, s.token(), s.concurrency, s.on_stop) == ("http://coordinator:8000",
                                                            "from-env", 2, "finish")
    s = settings_from(parser.parse_args(["worker", "--on-stop", "hand-back", "--name", "w"]))
    assert (s.on_stop, s.worker_name, s.concurrency) == ("hand-back", "w", 3)
    monkeypatch.setenv("AELLE_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="concurrency"):
        settings_from(parser.parse_args(["worker"]))


def test_client_errors_are_typed(tmp_path):
    with serving(service_settings(f"sqlite:///{tmp_path}/a.db")) as url:
        client = CoordinatorClient(url, "wrong")
        with pytest.raises(Rejected, match="401"):
            client.lease("t")
        good = CoordinatorClient(url, "worker-secret-for-tests")
        with pytest.raises(LeaseLost, match="409"):
            httpx.post(f"{url}{API}/studies", json=study(budget=1), headers=USER)
            got = good.lease("t")
            good.report(got["trial_id"], "0" * 32, 0, 1.0, [0.1] * 8)
    gone = CoordinatorClient(url, "worker-secret-for-tests", patience=1.0)
    with pytest.raises(Unreachable, match="gave up"):
        gone.lease("t")
    with pytest.raises(ValueError, match="token"):
        CoordinatorClient(url, "")
    with pytest.raises(ValueError, match="http"):
        CoordinatorClient("localhost:8000", "t")


class Faulty(httpx.HTTPTransport):
    """The real coordinator behind a way that fails: the first ``n`` requests whose path
    holds ``part`` get ``status`` (or, with status None, a refused connection)."""

    def __init__(self, part, n, status=500):
        super().__init__()
        self.part, self.left, self.status = part, n, status
        self.failed = 0

    def handle_request(self, request):
        if self.part in request.url.path and self.left > 0:
            self.left -= 1
            self.failed += 1
            if self.status is None:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(self.status, json={"detail": "Internal Server Error"})
        return super().handle_request(request)


@pytest.mark.parametrize("part, status", [("/leases", 500), ("/reports", 500),
                                          ("/result", 502), ("/reports", None)])
def test_a_worker_rides_out_server_errors_and_lost_connections(server, part, status):
    submit(server, budget=2, epochs=1, pruner={"name": "none"})
    faulty = Faulty(part, 2, status)
    client = CoordinatorClient(server, "worker-secret-for-tests", transport=faulty, patience=30)
    counts = Worker(client, name="t", burst=True, progress=False).run()
    client.close()
    assert faulty.failed == 2 and counts == {Outcome.COMPLETE: 2}
    assert [t["state"] for t in ranked(server)] == ["complete", "complete"]


def test_a_worker_hands_a_trial_back_when_the_coordinator_is_lost(server):
    submit(server, budget=1, epochs=2, pruner={"name": "none"})
    faulty = Faulty("/reports", 10**6, None)  # every report is lost; the result goes through
    client = CoordinatorClient(server, "worker-secret-for-tests", transport=faulty,
                               patience=1.0)
    worker = Worker(client, name="t", burst=True, progress=False)
    assert worker.run_one(client.lease("t")) == Outcome.HANDED_BACK
    client.close()
    # handed back, not failed for good: the same parameters wait to run again
    assert {t["state"] for t in ranked(server)} == {"failed", "waiting"}


def test_a_wrong_token_ends_the_worker_non_zero_with_one_line(server, capsys):
    from aelle.cli import main

    submit(server, budget=1, epochs=1)
    worker = Worker(CoordinatorClient(server, "not-the-worker-token"), burst=True,
                    progress=False)
    assert worker.run() == {} and "refuses the worker token (401)" in worker.fatal
    assert main(["worker", "--url", server, "--token", "not-the-worker-token",
                 "--burst"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("aelle worker: the coordinator refuses the worker token")


def test_a_lost_coordinator_ends_the_worker_non_zero(tmp_path, capsys):
    from aelle.cli import main
    from service.local import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens
    worker = Worker(CoordinatorClient(url, "worker-secret-for-tests", patience=0.5),
                    burst=True, progress=False)
    assert worker.run() == {Outcome.UNREACHABLE: 1}
    assert worker.fatal.startswith("the coordinator was lost")
    assert main(["worker", "--url", url, "--token", "worker-secret-for-tests",
                 "--patience", "0.5", "--burst"]) == 1
    assert "aelle worker: the coordinator was lost" in capsys.readouterr().err


def test_a_worker_gets_only_the_tasks_it_can_run(server):
    submit(server, budget=1, epochs=1, pruner={"name": "none"})
    client = CoordinatorClient(server, "worker-secret-for-tests")
    assert client.lease("w", tasks=["charrnn", "signal"]) is None
    assert Worker(client, burst=True, progress=False, tasks=["signal"]).run() == {}
    got = client.lease("w", tasks=["smnist"])
    assert got["task"] == "smnist"
    client.close()
    assert ranked(server)[0]["state"] == "running"


def test_a_worker_offers_its_task_versions_and_refuses_a_lease_of_another(server):
    submit(server, budget=1, epochs=1, pruner={"name": "none"})
    client = CoordinatorClient(server, "worker-secret-for-tests")
    worker = Worker(client, burst=True, progress=False)
    assert worker.versions == dict.fromkeys(["charrnn", "flipflop", "signal", "smnist", "sysid"],
                                            "1")
    assert client.lease("w", ["smnist"], {"smnist": "2"}) is None  # the study runs version 1
    got = client.lease("w")  # no versions named: not checked
    got["task_version"] = "2"  # as a coordinator that ignored the versions would lease
    assert worker.run_one(got) == Outcome.FAILED
    client.close()
    # handed back to run again elsewhere, not failed for good
    assert {t["state"] for t in ranked(server)} == {"failed", "waiting"}


def test_a_bad_task_module_ends_the_worker_with_status_2(capsys):
    from aelle.cli import main

    assert main(["worker", "--task-module", "no_such_tasks", "--token", "t", "--burst"]) == 2
    assert "task module 'no_such_tasks' could not be imported" in capsys.readouterr().err
