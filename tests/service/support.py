"""Helpers of the service and worker tests: tokens, a tiny study, a real uvicorn server."""

import contextlib
import socket
import threading
import time

import uvicorn

from service.api.app import create_app
from service.config import ServiceSettings
from tests.tasks.conftest import TINY

USER = {"Authorization": "Bearer user-secret"}
WORKER = {"Authorization": "Bearer worker-secret"}
SETTINGS = {**TINY["smnist"], "hidden": 8, "train_size": 128, "val_size": 64,
            "spectrum_sequences": 2, "spectrum_steps": 12, "spectrum_warmup": 4}


def study(name="s", budget=3, epochs=2, **kw):
    return {"name": name, "task": "smnist", "budget": budget, "epochs": epochs,
            "settings": SETTINGS, "sampler": {"name": "random", "seed": 0}, **kw}


def service_settings(url, **kw):
    return ServiceSettings(database_url=url, user_token="user-secret",
                           worker_token="worker-secret", heartbeat_interval=1,
                           grace_period=3, stale_check_seconds=0.5, **kw)


@contextlib.contextmanager
def serving(settings):
    """A real uvicorn coordinator in a thread; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
