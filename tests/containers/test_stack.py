"""The compose stack really runs: the images built from this repository, PostgreSQL, the
coordinator and two CPU workers in containers, driven through the REST API from the host. A
worker killed mid-trial, a restarted coordinator and a `down` then `up` lose nothing."""

import os

import pytest

from tests.containers.stack import Stack, build_images, docker_missing, sh, wait_until
from tests.service.support import SETTINGS

pytestmark = pytest.mark.slow

AELLE = {"name": "aelle", "settings": {
    "n_startup_trials": 3, "retrain_every": 2, "explore": 0.0,
    "config": {"dim": 16, "hidden": [16], "latent": 4, "epochs": 60, "warmup_epochs": 20,
               "ramp_epochs": 20, "components": 2}}}


def study(name, budget, epochs, pruner, seed=0):
    return {"name": name, "task": "smnist", "budget": budget, "epochs": epochs,
            "settings": SETTINGS, "sampler": {"name": "random", "seed": seed}, "pruner": pruner}


@pytest.fixture(scope="module")
def stack():
    reason = docker_missing()
    if reason:
        if os.environ.get("AELLE_REQUIRE_DOCKER") == "1":
            pytest.fail(f"AELLE_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    build_images()
    s = Stack()
    s.down(volumes=True)  # what an interrupted run left
    try:
        yield s
    finally:
        print(s.logs())
        s.close()


def finished(s, name, budget):
    summary = s.get(f"/studies/{name}")
    counts = summary["counts"]
    return (summary["used"] == budget and not counts.get("running")
            and not counts.get("waiting"))


def test_the_stack_runs_studies_and_survives_a_killed_worker_a_restart_and_down_up(stack):
    s = stack
    s.up(workers=2)
    assert len(s.containers("worker")) == 2

    # a killed worker: both workers are mid-trial; one dies without a word
    s.post("/studies", study("kill", budget=3, epochs=12, pruner={"name": "none"}))

    def both_busy():
        running = s.get("/studies/kill/trials?state=running")["data"]
        return len(running) == 2 and all(t["epochs"] >= 1 for t in running)

    wait_until(both_busy, 300, "both workers to be mid-trial")
    victim = s.containers("worker")[0]
    held = {t["number"] for t in s.get("/studies/kill/trials?state=running")["data"]}
    sh("docker", "kill", victim)
    wait_until(lambda: s.get("/studies/kill")["counts"].get("failed", 0) >= 1, 120,
               "the killed worker's trial to be failed")
    wait_until(lambda: finished(s, "kill", 3), 600, "the study with a killed worker to end")
    summary = s.get("/studies/kill")
    # the budget is exact: three trials completed, each failure replaced by its retry
    assert summary["counts"]["complete"] == 3 and summary["used"] == 3, summary
    assert set(summary["counts"]) == {"complete", "failed"}, summary
    trials = {t["number"]: t for t in s.get("/studies/kill/trials")["data"]}
    failed = {n for n, t in trials.items() if t["state"] == "failed"}
    assert failed & held  # the killed worker's trial
    retries = {t["retry_of"]: t for t in trials.values() if t["retry_of"] is not None}
    assert set(retries) == failed
    for n, retry in retries.items():
        assert retry["params"] == trials[n]["params"]
    assert len(trials) == 3 + len(failed)

    # a study pruned by AeLLE, with the coordinator restarted in its middle
    s.post("/studies", study("e2e", budget=8, epochs=3, pruner=AELLE, seed=1))
    wait_until(lambda: s.get("/studies/e2e")["counts"].get("complete", 0) >= 2, 600,
               "two trials of the AeLLE study to complete")
    kill_before = s.get("/studies/kill/trials")
    done_before = s.get("/studies/e2e/trials?state=complete")["data"]
    sh("docker", "restart", "--time", "10", *s.containers("coordinator"))
    s.wait_healthy()
    assert s.get("/studies/kill/trials") == kill_before
    done_after = {t["number"]: t for t in s.get("/studies/e2e/trials?state=complete")["data"]}
    for t in done_before:
        assert done_after[t["number"]] == t  # nothing completed before the restart changed
    wait_until(lambda: finished(s, "e2e", 8), 900, "the AeLLE study to end")
    summary = s.get("/studies/e2e")
    ended = sum(summary["counts"].get(k, 0) for k in ("complete", "pruned", "diverged"))
    assert ended == 8, summary
    ranked = s.get("/studies/e2e/trials?top=8")["data"]
    values = [t["value"] for t in ranked if t["state"] == "complete"]
    assert len(values) >= 3 and values == sorted(values)
    wait_until(lambda: s.get("/studies/e2e/model")["latest"] is not None, 120,
               "the AeLLE model to be persisted")
    model = s.get("/studies/e2e/model")["latest"]
    assert model["trials"] >= 2

    # the workers uploaded the best trial's trained network to the coordinator's volume
    best = s.get("/studies/e2e")["best"]["number"]
    network = s.download(f"/studies/e2e/trials/{best}/artifact")

    # down keeps the volumes; a second up serves the same data and runs a new study
    trials_before = {name: s.get(f"/studies/{name}/trials") for name in ("kill", "e2e")}
    s.down()
    assert not s.containers("coordinator")
    assert s.volume() in sh("docker", "volume", "ls", "--quiet").split()
    s.up(workers=1)
    for name, trials in trials_before.items():
        assert s.get(f"/studies/{name}/trials") == trials
    assert s.get("/studies/e2e/model")["latest"] == model
    assert s.download(f"/studies/e2e/trials/{best}/artifact") == network
    s.post("/studies", study("again", budget=2, epochs=2, pruner={"name": "none"}, seed=2))
    wait_until(lambda: finished(s, "again", 2), 600, "a study after the second up to end")
    assert s.get("/studies/again")["counts"] == {"complete": 2}
