"""The coordinator's uses of Optuna's private and experimental surface, pinned against the
installed Optuna (``optuna>=4`` is a floor, not a pin): if one of these fails after an
upgrade, ``service/optuna_compat.py`` is the one file to mend."""

import time
import warnings

import optuna
from optuna.trial import TrialState

from service.optuna_compat import (
    ask,
    fail_stale,
    frozen_of,
    quiet,
    requeue,
    storage,
    study_id,
    trial_id,
)


def rdb(tmp_path, **kw):
    return storage(f"sqlite:///{tmp_path}/o.db", {}, heartbeat_interval=kw.get("interval", 1),
                   grace_period=kw.get("grace", 2), max_retry=2)


def test_ids_and_the_running_trial_as_its_pruner_sees_it(tmp_path):
    store = rdb(tmp_path)
    study = optuna.create_study(storage=store, study_name="s")
    trial = ask(study)
    trial.suggest_float("x", 0.0, 1.0)
    trial.report(0.5, 0)
    frozen = frozen_of(trial)
    assert study_id(study) == store.get_study_id_from_name("s")
    assert frozen == store.get_trial(trial_id(trial)) and trial_id(frozen) == trial_id(trial)
    assert frozen.params == trial.params and frozen.intermediate_values == {0: 0.5}
    frozen.intermediate_values = {}  # a copy: the Trial's own stays as it was
    assert frozen_of(trial).intermediate_values == {0: 0.5}


def test_requeue_runs_a_failed_trial_again_with_its_parameters(tmp_path):
    study = optuna.create_study(storage=rdb(tmp_path))
    trial = ask(study)
    x = trial.suggest_float("x", 0.0, 1.0)
    study.tell(trial, state=TrialState.FAIL)
    requeue(study, study.trials[0], max_retry=2)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].params == {"x": x}
    assert waiting[0].system_attrs["failed_trial"] == 0


def test_stale_heartbeats_fail_and_queue_a_retry(tmp_path):
    study = optuna.create_study(storage=rdb(tmp_path))
    trial = ask(study)
    trial.suggest_float("x", 0.0, 1.0)
    study._storage.record_heartbeat(trial_id(trial))
    time.sleep(3.5)
    fail_stale(study)
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.WAITING]


def test_quiet_silences_the_experimental_warnings_only():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet():
            warnings.warn("x", optuna.exceptions.ExperimentalWarning, stacklevel=1)
            warnings.warn("heartbeat is meant for optimize()", UserWarning, stacklevel=1)
            warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["something else"]
