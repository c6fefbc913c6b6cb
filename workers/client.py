"""The worker's side of the coordinator's REST interface.

Faults of the coordinator or the way to it (a connection refused or cut, a timeout, any 5xx
answer: a restart, a database outage, a bug on one request) are retried with exponential
backoff and jitter for up to ``patience`` seconds, then raise :class:`Unreachable`. A refusal
(4xx) is not retried: it raises :class:`Rejected`; :class:`BadToken` for 401/403 (no request
of this worker will ever pass), :class:`LeaseLost` when the coordinator says the trial is no
longer this worker's (404: gone; 409: failed after a missed heartbeat, or finished).
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from typing import Any

import httpx

from workers.config import WorkerSettings

log = logging.getLogger("aelle.worker")
# The server's routes live under the same prefix (service.api.API_PREFIX); the worker does not
# import the service, so it spells the prefix itself.
API_PREFIX = "/api/v1"
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # seconds between retries: doubling, with jitter


class Rejected(RuntimeError):
    """The coordinator refused a request (4xx); the message is its explanation."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


class LeaseLost(Rejected):
    """The trial is no longer this worker's to run."""


class BadToken(Rejected):
    """The coordinator refuses this worker's token (401/403)."""


class Unreachable(RuntimeError):
    """The coordinator did not answer within the worker's patience."""


_DEFAULTS = WorkerSettings.model_fields


class CoordinatorClient:
    def __init__(self, url: str, token: str, *,
                 timeout: float = _DEFAULTS["request_timeout"].default,
                 patience: float = _DEFAULTS["patience"].default,
                 transport: httpx.BaseTransport | None = None):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if not token:
            raise ValueError("a worker token is required (--token or AELLE_WORKER_TOKEN)")
        self.patience = patience
        self._http = httpx.Client(base_url=url.rstrip("/") + API_PREFIX, timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}"},
                                  transport=transport)

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> CoordinatorClient:
        return cls(settings.url, settings.token(), timeout=settings.request_timeout,
                   patience=settings.patience)

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any],
              patience: float | None = None) -> dict[str, Any]:
        return self._send("POST", path, patience, json=body)

    def _send(self, method: str, path: str, patience: float | None = None,
              **request: Any) -> dict[str, Any]:
        patience = self.patience if patience is None else patience
        deadline = time.monotonic() + patience
        delay = BACKOFF_FIRST
        while True:
            try:
                r = self._http.request(method, path, **request)
            except httpx.TransportError as e:
                problem = f"{type(e).__name__}: {e}"
            else:
                if r.status_code < 400:
                    try:
                        return r.json()
                    except ValueError:  # a proxy's page, a cut body: as good as no answer
                        problem = f"HTTP {r.status_code} with a body that is not JSON"
                elif r.status_code < 500:
                    detail = _detail(r)
                    kind = (BadToken if r.status_code in (401, 403) else
                            LeaseLost if r.status_code in (404, 409) and "/trials/" in path
                            else Rejected)
                    raise kind(r.status_code, detail)
                else:
                    problem = f"HTTP {r.status_code}: {_detail(r)[:200]}"
            if time.monotonic() + delay > deadline:
                raise Unreachable(f"{method} {path}: {problem}; gave up after {patience:.0f} s")
            log.warning("%s %s: %s; retrying in %.1f s", method, path, problem, delay)
            time.sleep(delay * (0.75 + 0.5 * random.random()))  # jitter: workers spread out
            delay = min(delay * 2, BACKOFF_MAX)

    def lease(self, worker: str, tasks: list[str] | None = None,
              versions: dict[str, str] | None = None) -> dict[str, Any] | None:
        """A trial to run, of one of ``tasks`` when given (the tasks this worker has the code
        of) and of the same task version as in ``versions``; None: no work."""
        body: dict[str, Any] = {"worker": worker}
        if tasks is not None:
            body["tasks"] = list(tasks)
        if versions:
            body["versions"] = dict(versions)
        got = self._post("/leases", body)
        return None if got.get("trial_id") is None else got

    def report(self, trial_id: int, lease: str, epoch: int, value: float,
               spectrum: list[float] | None) -> dict[str, Any]:
        return self._post(f"/trials/{trial_id}/reports",
                          {"lease": lease, "epoch": epoch, "value": value,
                           "spectrum": spectrum})

    def upload_artifact(self, trial_id: int, lease: str, data: bytes) -> dict[str, Any]:
        """The running trial's trained network (``tasks.artifacts.pack``), with its digest;
        repeating it is harmless (the coordinator answers what it stored)."""
        return self._send("PUT", f"/trials/{trial_id}/artifact", content=data,
                          headers={"X-AeLLE-Lease": lease,
                                   "X-AeLLE-SHA256": hashlib.sha256(data).hexdigest(),
                                   "content-type": "application/octet-stream"})

    def heartbeat(self, trial_id: int, lease: str) -> dict[str, Any]:
        return self._post(f"/trials/{trial_id}/heartbeat", {"lease": lease})

    def result(self, trial_id: int, lease: str, state: str, value: float | None = None,
               reason: str | None = None, retry: bool = False,
               patience: float | None = None) -> dict[str, Any]:
        return self._post(f"/trials/{trial_id}/result",
                          {"lease": lease, "state": state, "value": value, "reason": reason,
                           "retry": retry}, patience=patience)


def _detail(r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        detail = r.text
    return detail if isinstance(detail, str) else str(detail)
