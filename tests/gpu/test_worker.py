"""A real worker process with ``--concurrency 4`` against a real coordinator: on one GPU four
trials share the device, each in its own thread."""

import os
import subprocess
import sys
import threading
import time

import httpx

from tests.gpu.conftest import ON_DEVICES
from tests.service.support import SETTINGS, USER, WORKER, study
from workers.client import API_PREFIX as API


def running_peak(url: str, done: threading.Event) -> list[int]:
    """Poll the study's trials until ``done``; the most seen running at once, in a list that
    the poller fills."""
    peak = [0]

    def poll():
        while not done.is_set():
            trials = httpx.get(f"{url}{API}/studies/s/trials", headers=USER).json()["data"]
            peak[0] = max(peak[0], sum(t["state"] == "running" for t in trials))
            time.sleep(0.1)

    threading.Thread(target=poll, daemon=True).start()
    return peak


@ON_DEVICES
def test_a_worker_with_concurrency_4_finishes_a_study(server, device):
    budget = 8
    r = httpx.post(f"{server}{API}/studies", headers=USER, json=study(
        budget=budget, epochs=2, settings={**SETTINGS, "device": device},
        pruner={"name": "none"}))
    assert r.status_code == 201, r.text
    done = threading.Event()
    peak = running_peak(server, done)
    env = {**os.environ, "AELLE_WORKER_TOKEN": WORKER["Authorization"].removeprefix("Bearer "),
           "AELLE_POLL_INTERVAL": "0.2"}
    try:
        p = subprocess.run([sys.executable, "-m", "aelle.cli", "worker", "--url", server,
                            "--name", "w", "--concurrency", "4", "--burst"],
                           capture_output=True, text=True, timeout=540, env=env)
    finally:
        done.set()
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"w: complete {budget}" in p.stderr, p.stderr[-3000:]
    trials = httpx.get(f"{server}{API}/studies/s/trials", headers=USER).json()["data"]
    assert len(trials) == budget and {t["state"] for t in trials} == {"complete"}
    assert all(t["epochs"] == 3 for t in trials)  # epochs 0, 1, 2 reported
    assert peak[0] >= 2, f"at most {peak[0]} trial(s) ran at once"
