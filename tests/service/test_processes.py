"""Real processes: ``aelle serve`` and ``aelle worker`` subprocesses on a SQLite file, driven
through the CLI and the REST API; a worker killed mid-trial; a coordinator restarted
mid-study."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from service.api import API_PREFIX as API
from service.local import free_port
from tests.service.support import SETTINGS, USER


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "AELLE_DATABASE_URL": f"sqlite:///{tmp_path}/aelle.db",
            "AELLE_USER_TOKEN": "user-secret-for-tests",
            "AELLE_WORKER_TOKEN": "worker-secret-for-tests",
            "AELLE_HEARTBEAT_INTERVAL": "1", "AELLE_GRACE_PERIOD": "4",
            "AELLE_STALE_CHECK_SECONDS": "0.5", "PYTHONUNBUFFERED": "1"}


class Process(subprocess.Popen):
    """A subprocess whose output goes to a file: a pipe nobody drains fills up (64 kB of a
    coordinator's access log) and blocks the process in its next write."""

    def __init__(self, argv, env):
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives with the process)
        super().__init__(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


def aelle(*args, env) -> Process:
    return Process([sys.executable, "-m", "aelle.cli", *args], env=env)


def run(*args, env) -> str:
    p = subprocess.run([sys.executable, "-m", "aelle.cli", *args], env=env, text=True,
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout
    return p.stdout


class Coordinator:
    def __init__(self, env):
        self.env, self.port = env, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "AELLE_URL": self.url}
        self.proc = None

    def start(self, timeout: float = 60):
        self.proc = aelle("serve", "--port", str(self.port), env=self.env)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}{API}/health").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the coordinator did not start:\n" + self.output())
            time.sleep(0.2)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def output(self) -> str:
        self.stop()
        return self.proc.output() if self.proc else ""

    def get(self, path):
        return httpx.get(f"{self.url}{API}{path}", headers=USER, timeout=30).json()


@pytest.fixture
def coordinator(env):
    c = Coordinator(env).start()
    yield c
    c.stop()


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def submit(c, name, budget, epochs, *extra):
    sets = [f"--set={k}={v}" for k, v in SETTINGS.items()]
    return run("submit", "--name", name, "--task", "smnist", "--budget", str(budget),
               "--epochs", str(epochs), "--sampler", "random", "--seed", "0", *sets, *extra,
               env=c.env)


def test_two_worker_processes_finish_a_study_pruned_by_aelle(coordinator, tmp_path):
    c = coordinator
    spec = {"pruner": {"name": "aelle", "settings": {
        "n_startup_trials": 3, "retrain_every": 2, "explore": 0.0,
        "config": {"dim": 16, "hidden": [16], "latent": 4, "epochs": 60, "warmup_epochs": 20,
                   "ramp_epochs": 20, "components": 2}}}}
    path = tmp_path / "study.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    out = submit(c, "e2e", 10, 3, str(path))
    assert "created study e2e" in out
    workers = [aelle("worker", "--burst", "--name", f"w{i}", env=c.env) for i in range(2)]
    for w in workers:
        assert w.wait(timeout=300) == 0, w.output()
    trials = json.loads(run("trials", "e2e", "--json", env=c.env))
    assert len(trials) == 10
    assert {t["state"] for t in trials} <= {"complete", "pruned", "diverged"}
    done = [t["value"] for t in trials if t["state"] == "complete"]
    assert done == sorted(done) and len(done) >= 3
    by_model = [t for t in trials if t["state"] == "pruned"]
    for t in by_model:
        assert t["epochs"] < 4 and t["prediction"] is not None
    wait_until(lambda: c.get("/studies/e2e/model")["latest"] is not None, 60,
               "the AeLLE model to be persisted")
    status = c.get("/studies/e2e/model")
    # a model is fitted from two completed trials on (and refitted every two more)
    assert status["latest"]["trials"] >= 2 and status["latest"]["spectra"] >= 2 * 4
    table = run("trials", "e2e", "--top", "3", env=c.env)
    assert table.splitlines()[0].split()[:3] == ["#", "state", "value"]
    assert len(table.splitlines()) == 5  # header, rule, three trials
    studies = run("studies", env=c.env)
    assert "e2e" in studies and "10/10" in studies


def test_a_killed_worker_s_trial_is_failed_after_the_grace_period_and_retried(coordinator):
    c = coordinator
    # trials of a few seconds (the tests' tiny ones take a fraction of one): the victim is
    # killed in the middle of one, not between two
    submit(c, "kill", 2, 40, "--pruner", "none", "--set", "train_size=1024")
    victim = aelle("worker", "--name", "victim", env=c.env)
    seen = []

    def running_with_reports():
        # a trial that reported has all its parameters (a new one is still being sampled)
        seen[:] = [r for r in c.get("/studies/kill/trials?state=running")["data"]
                   if 1 <= r["epochs"] <= 20]
        return seen

    wait_until(running_with_reports, 120, "the victim's trial to run")
    first = seen[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    wait_until(lambda: c.get("/studies/kill")["counts"].get("failed", 0) == 1, 60,
               "the dead worker's trial to be failed")
    # the trial is queued again with its parameters; a new worker finishes the study
    assert c.get("/studies/kill/trials?state=waiting")["data"][0]["params"] == first["params"]
    rescue = aelle("worker", "--burst", "--name", "rescue", env=c.env)
    assert rescue.wait(timeout=600) == 0, rescue.output()
    summary = c.get("/studies/kill")
    assert summary["counts"] == {"complete": 2, "failed": 1} and summary["used"] == 2
    retried = [t for t in c.get("/studies/kill/trials")["data"] if t["retry_of"] is not None]
    assert retried[0]["retry_of"] == first["number"]
    assert retried[0]["params"] == first["params"]


def test_a_restarted_coordinator_keeps_spectra_and_model_and_workers_reconnect(coordinator):
    c = coordinator
    spec = {"pruner": {"name": "aelle", "settings": {
        "n_startup_trials": 2, "retrain_every": 1, "explore": 0.0,
        "config": {"dim": 16, "hidden": [16], "latent": 4, "epochs": 40, "warmup_epochs": 10,
                   "ramp_epochs": 10, "components": 2}}}}
    httpx.post(f"{c.url}{API}/studies", headers=USER, json={
        "name": "restart", "task": "smnist", "budget": 10, "epochs": 2, "settings": SETTINGS,
        "sampler": {"name": "random", "seed": 1}, **spec})
    worker = aelle("worker", "--name", "steady", env=c.env)
    wait_until(lambda: c.get("/studies/restart/model")["latest"] is not None, 300,
               "a persisted model")
    before = c.get("/studies/restart/model")["latest"]
    done = c.get("/studies/restart/trials?state=complete")["data"][0]
    spectra = c.get(f"/studies/restart/trials/{done['number']}")["reports"]
    c.proc.send_signal(signal.SIGKILL)  # no clean shutdown
    c.proc.wait(timeout=30)
    c.start()  # same database, same port: the worker keeps retrying and reconnects
    after = c.get("/studies/restart/model")
    assert after["latest"]["trials"] >= before["trials"]  # the persisted model survived
    assert c.get(f"/studies/restart/trials/{done['number']}")["reports"] == spectra
    wait_until(lambda: c.get("/studies/restart")["used"] == 10 and not c.get(
        "/studies/restart")["counts"].get("running") and not c.get(
        "/studies/restart")["counts"].get("waiting"), 600, "the study to finish")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    counts = c.get("/studies/restart")["counts"]
    finished = sum(counts.get(k, 0) for k in ("complete", "pruned", "diverged"))
    assert finished == 10, counts  # every trial of the budget ended; none lost
    assert c.get("/studies/restart/model")["in_use"] is not None  # the model decides again
