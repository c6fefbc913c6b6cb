"""Every use the coordinator makes of Optuna's private or experimental surface, in one place.

Optuna's public API has no trial or study id on its handles, no cheap way to see the running
trial a ``Trial`` holds, and marks its heartbeat machinery experimental; the coordinator needs
all three. ``tests/service/test_optuna_compat.py`` pins them against the installed Optuna.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import warnings
from collections.abc import Iterator

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import Engine, text


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Without Optuna's "experimental" warnings (heartbeats) and its warning that heartbeats
    are meant for ``optimize()`` (the coordinator records them for its workers)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message=".*heartbeat.*", category=UserWarning)
        yield


def study_id(study: optuna.Study) -> int:
    return study._study_id


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    return trial._trial_id


def storage(url: str, engine_kwargs: dict, *, heartbeat_interval: int, grace_period: int,
            max_retry: int) -> RDBStorage:
    """Optuna's RDB storage with heartbeats: a trial silent for ``grace_period`` seconds is
    failed and queued again (at most ``max_retry`` times)."""
    with quiet():
        return RDBStorage(url, engine_kwargs=engine_kwargs,
                          heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                              max_retry=max_retry))


def ask(study: optuna.Study) -> optuna.Trial:
    with quiet():
        return study.ask()


def frozen_of(trial: optuna.Trial) -> FrozenTrial:
    """The running trial as its pruner will see it. The Trial keeps its own FrozenTrial up to
    date as parameters are suggested; a copy of that saves reading it back from the storage."""
    cached = getattr(trial, "_cached_frozen_trial", None)
    if cached is None:
        return trial.study._storage.get_trial(trial_id(trial))
    return copy.deepcopy(cached)


def fail_stale(study: optuna.Study) -> None:
    """Fail the study's running trials whose heartbeat is stale (their retries are queued)."""
    with quiet():
        fail_stale_trials(study)


def requeue(study: optuna.Study, failed: FrozenTrial, max_retry: int | None) -> None:
    """Queue a failed trial again with the same parameters, as a stale heartbeat would: the
    worker stopped, not the trial. Optuna's retry callback does exactly this."""
    with quiet():
        RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, failed)


def fail_abandoned(study: optuna.Study, tid: int, max_retry: int) -> bool:
    """Fail a running trial no worker runs (its lease was never handed out); a retry among
    them is queued again, as a stale heartbeat would, so that its parameters still run. False
    if the trial had finished meanwhile."""
    storage = study._storage
    try:
        if not storage.set_trial_state_values(tid, TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False
    failed = storage.get_trial(tid)
    if "failed_trial" in failed.system_attrs:
        requeue(study, failed, max_retry)
    return True


def orphans(engine: Engine, older_than: float) -> list[tuple[int, int]]:
    """(study id, trial id) of the running trials of the coordinator's studies that have no
    lease and started more than ``older_than`` seconds ago; read from Optuna's ``trials``
    table (its ``state`` holds the state's name, ``datetime_start`` local time)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT t.study_id, t.trial_id, t.datetime_start FROM trials t "
            "JOIN aelle_studies s ON s.study_id = t.study_id "
            "LEFT JOIN aelle_leases l ON l.trial_id = t.trial_id "
            "WHERE t.state = 'RUNNING' AND l.trial_id IS NULL")).all()
    cutoff = dt.datetime.now() - dt.timedelta(seconds=older_than)
    found = []
    for sid, tid, start in rows:
        if isinstance(start, str):
            start = dt.datetime.fromisoformat(start)
        if start is None or start.replace(tzinfo=None) < cutoff:
            found.append((sid, tid))
    return found
