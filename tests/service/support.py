"""Helpers of the service and worker tests: tokens, a tiny study, a real uvicorn server."""

import json
import tempfile

from service.api import API_PREFIX as API
from service.config import ServiceSettings
from service.local import local_coordinator
from tests.tasks.conftest import TINY

USER = {"Authorization": "Bearer user-secret-for-tests"}
WORKER = {"Authorization": "Bearer worker-secret-for-tests"}
# spectrum_state "hidden": every architecture reports `hidden` exponents, the size the tests'
# hand-made reports carry
SETTINGS = {**TINY["smnist"], "hidden": 8, "train_size": 128, "val_size": 64,
            "spectrum_sequences": 2, "spectrum_steps": 12, "spectrum_warmup": 4,
            "spectrum_state": "hidden"}


def study(name="s", budget=3, epochs=2, **kw):
    # AeLLE, which prunes nothing before its startup trials: the tests' tiny networks would
    # not pass the default pruner's screen (tests/service/test_joint_hp.py tests that one)
    return {"name": name, "task": "smnist", "budget": budget, "epochs": epochs,
            "settings": SETTINGS, "sampler": {"name": "random", "seed": 0},
            "pruner": {"name": "aelle"}, **kw}


def service_settings(url, **kw):
    if not url.startswith("sqlite") and "artifact_dir" not in kw:
        # a coordinator on PostgreSQL would store networks in ./aelle-artifacts: not in the tree
        kw["artifact_dir"] = tempfile.mkdtemp(prefix="aelle-test-artifacts-")
    return ServiceSettings(database_url=url, user_token="user-secret-for-tests",
                           worker_token="worker-secret-for-tests", heartbeat_interval=1,
                           grace_period=3, stale_check_seconds=0.5, **kw)


def patient_settings(url, **kw):
    """Settings whose trials outlive training one network here (no stale sweep)."""
    return service_settings(url).model_copy(
        update={"heartbeat_interval": 30, "grace_period": 120, **kw})


def serving(settings):
    """A real uvicorn coordinator in a thread; yields its base URL."""
    return local_coordinator(settings)


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
