"""A Python client of a running coordinator, for notebooks and scripts (the ``aelle`` user
commands use it too).

```python
from aelle.client import Client

c = Client("http://127.0.0.1:8000", token="...")   # default: $AELLE_URL, $AELLE_USER_TOKEN
c.submit(name="s1", task="smnist", budget=40, epochs=10)
for snapshot in c.watch("s1"):                       # until the study is done
    print(snapshot["counts"], snapshot["best"])
frame = c.trials_frame("s1")                         # pandas, one row per trial
net = c.best_model("s1")                             # the best trial's trained network
```
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

API_PREFIX = "/api/v1"  # the coordinator's (service.api.API_PREFIX); the client stands alone
DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(RuntimeError):
    """The coordinator refused the request (``status``, its ``detail``), or could not be
    reached (``status`` None)."""

    def __init__(self, status: int | None, detail: str):
        super().__init__(detail if status is None else f"{status}: {detail}")
        self.status, self.detail = status, detail


class Client:
    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 60.0, transport: httpx.BaseTransport | None = None):
        self.url = (url or os.environ.get("AELLE_URL") or DEFAULT_URL).rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        token = token if token is not None else os.environ.get("AELLE_USER_TOKEN", "")
        if not token:
            raise ValueError("a user token is required (token= or AELLE_USER_TOKEN)")
        self._http = httpx.Client(base_url=self.url + API_PREFIX, timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}"},
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, path: str, *, body: Any = None,
              params: dict[str, Any] | None = None) -> httpx.Response:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            r = self._http.request(method, path, json=body, params=params)
        except httpx.TransportError as e:
            raise ApiError(None, f"cannot reach the coordinator at {self.url}: {e}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ApiError(r.status_code, detail if isinstance(detail, str) else str(detail))
        return r

    def _json(self, method: str, path: str, **kw) -> Any:
        return self._call(method, path, **kw).json()

    # ---- studies
    def submit(self, spec: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Create a study from ``spec`` (what ``aelle submit`` reads from a file) with
        ``fields`` on top; its summary."""
        return self._json("POST", "/studies", body={**(spec or {}), **fields})

    def studies(self) -> list[dict[str, Any]]:
        return self._json("GET", "/studies")["data"]

    def study(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/studies/{_name(name)}")

    def stop(self, name: str) -> dict[str, Any]:
        return self._json("POST", f"/studies/{_name(name)}/stop")

    def resume(self, name: str) -> dict[str, Any]:
        return self._json("POST", f"/studies/{_name(name)}/resume")

    def raise_budget(self, name: str, budget: int | None = None,
                     budget_epochs: int | None = None) -> dict[str, Any]:
        """Raise the trial budget, the epoch budget or both."""
        body = {k: v for k, v in (("budget", budget), ("budget_epochs", budget_epochs))
                if v is not None}
        return self._json("POST", f"/studies/{_name(name)}/budget", body=body)

    def requeue_failed(self, name: str) -> list[int]:
        """Queue the study's failed trials again; their numbers."""
        return self._json("POST", f"/studies/{_name(name)}/requeue")["requeued"]

    def delete(self, name: str) -> dict[str, Any]:
        return self._json("DELETE", f"/studies/{_name(name)}")

    # ---- trials
    def trials(self, name: str, state: str | None = None, top: int | None = None,
               order: str = "value") -> list[dict[str, Any]]:
        """The study's trials, best first (``order="number"``: as they were started)."""
        return self._json("GET", f"/studies/{_name(name)}/trials",
                          params={"state": state, "top": top, "order": order})["data"]

    def trial(self, name: str, number: int) -> dict[str, Any]:
        """One trial with its value, spectrum and decision at every epoch."""
        return self._json("GET", f"/studies/{_name(name)}/trials/{int(number)}")

    def trials_frame(self, name: str, **kw):
        """:meth:`trials` as a pandas DataFrame, one row per trial, a ``params.<name>``
        column per parameter."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("trials_frame needs pandas: pip install pandas (or use "
                              "Client.trials, a list of dicts)") from None
        return pd.json_normalize(self.trials(name, **kw))

    def watch(self, name: str, interval: float = 2.0, trials: bool = False,
              timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """The study as it runs, until it is done (its budget spent or it is stopped, and
        nothing runs or waits) or ``timeout`` seconds pass: its summary each time it
        changes, or with ``trials``, each trial each time its state, epochs or value
        change."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: dict[Any, Any] = {}
        while True:
            snapshot = self.study(name)
            if trials:
                for t in self.trials(name, order="number"):
                    mark = (t["state"], t["epochs"], t["value"])
                    if seen.get(t["number"]) != mark:
                        seen[t["number"]] = mark
                        yield t
            else:
                mark = (snapshot["counts"], snapshot["used"], snapshot["best"],
                        snapshot["stopped"], snapshot["epochs_trained"])
                if seen.get(None) != mark:
                    seen[None] = mark
                    yield snapshot
            if done(snapshot) or (deadline is not None and time.monotonic() >= deadline):
                return
            time.sleep(interval)

    # ---- trained networks
    def download(self, name: str, number: int, path: str | Path | None = None) -> bytes:
        """Trial ``number``'s trained network as bytes (also written to ``path``)."""
        data = self._call("GET", f"/studies/{_name(name)}/trials/{int(number)}/artifact").content
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def best_number(self, name: str) -> int:
        best = self.study(name)["best"]
        if best is None:
            raise ApiError(404, f"study {name!r} has no completed trial yet")
        return best["number"]

    def download_best(self, name: str, path: str | Path | None = None) -> bytes:
        """The best trial's trained network as bytes (also written to ``path``)."""
        return self.download(name, self.best_number(name), path)

    def model(self, name: str, number: int | None = None, device: str = "cpu"):
        """Trial ``number``'s network (default: the best trial's), rebuilt by its task
        (:func:`aelle.load_trial_model`)."""
        from tasks.artifacts import load_trial_model

        number = self.best_number(name) if number is None else number
        return load_trial_model(self.download(name, number), device=device)

    best_model = model

    # ---- explanations
    def upload_explain(self, name: str, number: int, report: dict[str, Any],
                       html: str | None = None) -> dict[str, Any]:
        """Store trial ``number``'s explanation: ``report`` the report's JSON
        (:func:`aelle.explain.report_json`), ``html`` its page; what was stored."""
        return self._json("PUT", f"/studies/{_name(name)}/trials/{int(number)}/explain",
                          body={"report": report, "html": html})

    def explain(self, name: str, number: int) -> dict[str, Any]:
        """Trial ``number``'s stored explanation, the report's JSON."""
        return self._json("GET", f"/studies/{_name(name)}/trials/{int(number)}/explain")

    def explain_html(self, name: str, number: int) -> str:
        """Trial ``number``'s stored explanation as its self-contained HTML page."""
        return self._call("GET", f"/studies/{_name(name)}/trials/{int(number)}/explain",
                          params={"format": "html"}).text


def done(study: dict[str, Any]) -> bool:
    """Whether a study's summary says it will run nothing more."""
    counts = study["counts"]
    running, waiting = counts.get("running", 0), counts.get("waiting", 0)
    if study.get("quarantine") is not None:
        return True
    if study["stopped"]:  # its queued trials wait for a resume
        return running == 0
    spent = study.get("spent", study["used"] >= study["budget"])
    return spent and running + waiting == 0


def _name(name: str) -> str:
    return quote(name, safe="")
