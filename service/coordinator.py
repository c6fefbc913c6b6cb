"""The coordinator: the use cases of one database put together, and its background sweep.

Optuna (``RDBStorage``) owns studies and trials; :mod:`service.db` holds the rest. Each part
owns one kind of state: :mod:`service.studies` the studies as this process uses them,
:mod:`service.leases` the running trials, :mod:`service.reports` the report and result paths,
:mod:`service.queries` what users read, :mod:`service.model_store` the AeLLE models. The web
layer (:mod:`service.api`) only translates HTTP to these calls, and their errors to codes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from service.artifacts import Artifacts, artifact_store
from service.config import ServiceSettings
from service.db import Database, SqliteLock, engine_options
from service.errors import NotFound
from service.explains import Explains
from service.leases import LeaseBook
from service.lifecycle import Lifecycle
from service.migrations import migrate
from service.model_store import ModelStore
from service.optuna_compat import storage
from service.queries import Queries
from service.reports import Reports
from service.studies import StudyCatalog
from service.study_views import StudyViews

log = logging.getLogger("aelle.service")


class Coordinator:
    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.db = Database(settings.database_url, settings)
        for step in migrate(settings.database_url):
            log.info("database: %s", step)
        self.storage = storage(settings.database_url,
                               engine_options(settings.database_url, settings),
                               heartbeat_interval=settings.heartbeat_interval,
                               grace_period=settings.grace_period,
                               max_retry=settings.max_retry)
        self.models = ModelStore(self.db, keep=settings.models_kept)
        self.studies = StudyCatalog(self.db, self.storage, self.models,
                                    settings.completed_cache_seconds)
        self.leases = LeaseBook(self.db, self.storage, self.studies,
                                settings.heartbeat_interval, settings.grace_period,
                                settings.max_retry)
        self.reports = Reports(self.db, self.storage, self.leases, settings.max_retry)
        self.queries = Queries(self.db, self.studies, self.models)
        self.artifacts = Artifacts(self.db, self.storage, self.studies, self.leases,
                                   artifact_store(settings), settings.artifacts_kept)
        self.explains = Explains(self.db, self.studies)
        self.lifecycle = Lifecycle(self.db, self.storage, self.studies, self.leases,
                                   self.artifacts, self.explains)
        self.views = StudyViews(self.db, self.studies, self.models)
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._lock = SqliteLock(settings.database_url)

    # ---- lifecycle
    def start(self) -> None:
        """Take the database (one coordinator per SQLite file: AlreadyServed if another holds
        it) and start failing trials whose heartbeat went stale (and queueing their
        retries)."""
        self._lock.acquire()
        warm_up_training()
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=self._sweep_loop, name="aelle-sweeper",
                                             daemon=True)
            self._sweeper.start()

    def close(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=10)
        self.wait_for_models(timeout=30)
        self._lock.release()

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.settings.stale_check_seconds):
            try:
                self.sweep()
            except Exception:  # keep sweeping: one bad pass must not end heartbeats
                log.exception("stale-trial sweep failed")

    def sweep(self) -> int:
        """Fail the stale running trials now; how many were failed."""
        return self.leases.sweep()

    def wait_for_models(self, timeout: float = 60.0) -> None:
        """Join running background refits (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        for active in self.studies.loaded():
            p = active.spectrum_pruner
            if p is not None:
                p.wait(max(0.0, deadline - time.monotonic()))

    # ---- the use cases, as the routes call them
    def create_study(self, spec):
        return self.studies.create(spec)

    def list_studies(self, limit: int | None = None, offset: int = 0):
        """(the summaries of ``limit`` studies from ``offset``, how many there are)."""
        names = self.studies.names(limit=limit, offset=offset)
        data = []
        for name in names:
            try:
                data.append(self.studies.summary(name))
            except NotFound:  # deleted meanwhile
                continue
        return data, self.studies.count()

    def summary(self, name: str):
        return self.studies.summary(name)

    def stop_study(self, name: str):
        return self.studies.stop(name)

    def spec(self, name: str) -> dict:
        return self.studies.row(name).spec

    def lease(self, worker: str, tasks: list[str] | None = None,
              versions: dict[str, str] | None = None):
        return self.leases.lease(worker, tasks, versions)

    def heartbeat(self, trial_id: int, token: str):
        with _trial_gone(trial_id):
            return self.leases.heartbeat(trial_id, token)

    def report(self, trial_id: int, token: str, step: int, value: float, spectrum):
        with _trial_gone(trial_id):
            return self.reports.report(trial_id, token, step, value, spectrum)

    def finish(self, trial_id: int, token: str, state: str, value, reason, retry=False):
        with _trial_gone(trial_id):
            done = self.reports.finish(trial_id, token, state, value, reason, retry)
        self.artifacts.after_result(trial_id)
        return done

    def upload_artifact(self, trial_id: int, token: str, data: bytes, sha256: str | None):
        with _trial_gone(trial_id):
            return self.artifacts.upload(trial_id, token, data, sha256)

    def artifact(self, name: str, number: int):
        """(the trial's stored network as bytes, what is known of it)."""
        return self.artifacts.download(name, number)

    def put_explain(self, name: str, number: int, upload):
        return self.explains.put(name, number, upload)

    def explain(self, name: str, number: int):
        """The trial's stored explanation (its row: report, html, created_at)."""
        return self.explains.get(name, number)

    def explain_html(self, name: str, number: int) -> str:
        return self.explains.html(name, number)

    def delete_study(self, name: str):
        return self.lifecycle.delete(name)

    def resume_study(self, name: str):
        return self.lifecycle.resume(name)

    def raise_budget(self, name: str, budget: int | None = None,
                     budget_epochs: int | None = None):
        return self.lifecycle.raise_budget(name, budget, budget_epochs)

    def requeue_failed(self, name: str):
        return self.lifecycle.requeue_failed(name)

    def trials(self, name: str, state: str | None = None, top: int | None = None,
               order: str = "value", limit: int | None = None, offset: int = 0):
        """(``limit`` of the ranked trials from ``offset``, how many were ranked)."""
        return self.queries.trials(name, state, top, order, limit=limit, offset=offset)

    def trial(self, name: str, number: int):
        return self.queries.trial(name, number)

    def model_status(self, name: str):
        return self.queries.model_status(name)

    def model_bytes(self, name: str) -> bytes:
        return self.queries.model_bytes(name)

    def curves(self, name: str, limit: int | None = None, offset: int = 0):
        return self.views.curves(name, limit=limit, offset=offset)

    def plane(self, name: str, limit: int | None = None, offset: int = 0):
        return self.views.plane(name, limit=limit, offset=offset)

    def model_versions(self, name: str, limit: int | None = None, offset: int = 0):
        return self.views.model_versions(name, limit=limit, offset=offset)


@contextlib.contextmanager
def _trial_gone(trial_id: int) -> Iterator[None]:
    """Optuna's storage raises KeyError for a trial deleted outside the coordinator (with its
    study): to the worker, a trial that is not there."""
    try:
        yield
    except KeyError:
        raise NotFound(f"trial {trial_id} no longer exists (deleted outside the "
                       "coordinator)") from None


def warm_up_training() -> None:
    """Pay torch's first-optimizer cost (it imports its compiler stack, holding the GIL for
    seconds) at start-up, not in the first background fit while reports wait."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
