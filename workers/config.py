"""The worker's settings: environment variables prefixed ``AELLE_`` (or arguments; a flag of
``aelle worker`` overrides its variable)."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

OnStop = Literal["hand-back", "finish"]


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(BaseSettings):
    """url: the coordinator. worker_token: the workers' bearer token (the coordinator's
    ``AELLE_WORKER_TOKEN``). worker_name: how the coordinator lists this worker's leases
    (default host-pid). concurrency: trials at once. patience: seconds to keep retrying an
    unreachable coordinator before giving up. poll_interval: seconds between lease requests
    while the coordinator has no work. request_timeout: seconds one HTTP request may take.
    on_stop: what SIGTERM does to running trials: ``hand-back`` (stop them at their next epoch
    and queue them again) or ``finish`` (let them end; a second signal hands them back).
    torch_threads: torch's CPU threads for the process (default: the cores shared among the
    concurrent trials when there is no GPU)."""

    model_config = SettingsConfigDict(env_prefix="AELLE_", extra="ignore")

    url: str = "http://127.0.0.1:8000"
    worker_token: SecretStr | None = None
    worker_name: str = Field(default_factory=_default_name, min_length=1)
    concurrency: int = Field(1, ge=1)
    patience: float = Field(300.0, ge=0)
    poll_interval: float = Field(2.0, gt=0)
    request_timeout: float = Field(30.0, gt=0)
    on_stop: OnStop = "hand-back"
    torch_threads: int | None = Field(None, ge=1)

    def token(self) -> str:
        return self.worker_token.get_secret_value() if self.worker_token else ""
