"""Everything on one machine, for ``aelle demo``, the benchmarks and tests: a coordinator in
this process (uvicorn in a thread) and burst workers as subprocesses."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

import uvicorn

from service.api.app import create_app
from service.config import ServiceSettings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_coordinator(settings: ServiceSettings, port: int | None = None,
                      log_level: str = "warning") -> Iterator[str]:
    """Serve ``settings`` on 127.0.0.1 until the block ends; yields the base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level=log_level))
    thread = threading.Thread(target=server.run, name="coordinator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the coordinator did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def spawn_workers(url: str, token: str, n: int, *, prefix: str = "worker",
                  env: Mapping[str, str] | None = None, logs: Sequence[IO] | None = None,
                  **popen: Any) -> list[subprocess.Popen]:
    """``n`` burst workers (``aelle worker --burst``, named ``{prefix}-{i}``) of the
    coordinator at ``url``, each a subprocess of this Python; they return when the coordinator
    has no more work. The token travels in the environment, not on the command line.
    ``env``: variables added to this process's environment; ``logs``: one file per worker for
    its stderr (a pipe nobody reads fills up and blocks the worker); ``popen``: passed on to
    :class:`subprocess.Popen` (``cwd``, ``stdout``, ...)."""
    if logs is not None and len(logs) != n:
        raise ValueError(f"{n} workers need {n} log files, got {len(logs)}")
    environment = {**os.environ, **(env or {}), "AELLE_URL": url, "AELLE_WORKER_TOKEN": token}
    return [subprocess.Popen([sys.executable, "-m", "aelle.cli", "worker", "--burst",
                              "--name", f"{prefix}-{i}"], env=environment,
                             **({"stderr": logs[i]} if logs is not None else {}), **popen)
            for i in range(n)]


def torch_threads_for_the_coordinator() -> None:
    """The coordinator only fits AeLLE's small MLP, beside the workers on the same cores:
    one torch thread is as fast for it and does not oversubscribe the machine."""
    import torch

    torch.set_num_threads(1)
