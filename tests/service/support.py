"""Helpers of the service and worker tests: tokens, a tiny study, a real uvicorn server."""

from service.config import ServiceSettings
from service.local import local_coordinator
from tests.tasks.conftest import TINY

USER = {"Authorization": "Bearer user-secret"}
WORKER = {"Authorization": "Bearer worker-secret"}
# spectrum_state "hidden": every architecture reports `hidden` exponents, the size the tests'
# hand-made reports carry
SETTINGS = {**TINY["smnist"], "hidden": 8, "train_size": 128, "val_size": 64,
            "spectrum_sequences": 2, "spectrum_steps": 12, "spectrum_warmup": 4,
            "spectrum_state": "hidden"}


def study(name="s", budget=3, epochs=2, **kw):
    return {"name": name, "task": "smnist", "budget": budget, "epochs": epochs,
            "settings": SETTINGS, "sampler": {"name": "random", "seed": 0}, **kw}


def service_settings(url, **kw):
    return ServiceSettings(database_url=url, user_token="user-secret",
                           worker_token="worker-secret", heartbeat_interval=1,
                           grace_period=3, stale_check_seconds=0.5, **kw)


def serving(settings):
    """A real uvicorn coordinator in a thread; yields its base URL."""
    return local_coordinator(settings)
