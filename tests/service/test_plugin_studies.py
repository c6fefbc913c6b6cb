"""Studies of tasks from outside the zoo: the coordinator without the task's code checks what
every task shares and leases only to workers that have the task, at the study's version; with
the code installed, it checks the space against the task."""

import sys

import pytest

from service.db import StudyRow
from tasks import registry
from tasks.plugins import import_task_module
from tests.service.support import API, USER, WORKER, report

FOREIGN = {"name": "f", "task": "forecast", "budget": 3, "epochs": 2,
           "search_space": {"hidden": {"type": "int", "low": 4, "high": 32},
                            "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
           "settings": {"window": 16, "spectrum_steps": 20},
           "sampler": {"name": "random", "seed": 0}}


def create(client, **kw):
    return client.post(f"{API}/studies", json={**FOREIGN, **kw}, headers=USER)


def lease(client, tasks=None, versions=None):
    body = {"worker": "w", "tasks": tasks, "versions": versions}
    r = client.post(f"{API}/leases", json={k: v for k, v in body.items() if v is not None},
                    headers=WORKER)
    assert r.status_code == 200, r.text
    return None if r.json()["trial_id"] is None else r.json()


@pytest.mark.parametrize("change, message", [
    ({"search_space": None}, "unknown task 'forecast' on this coordinator (installed: "
                             "charrnn, flipflop, signal, smnist, sysid); a study of a task "
                             "that only its workers have must give its search_space"),
    ({"epochs": None}, "must give the study's epochs"),
    ({"search_space": {"h": {"type": "float", "low": 1, "high": 1e300}}}, "search_space.h"),
    ({"search_space": {"h": {"type": "int", "low": 3, "high": 1}}}, "low (3.0) is above high"),
    ({"search_space": {"not a name": {"type": "int", "low": 1, "high": 2}}},
     "a name is a Python identifier"),
    ({"search_space": {"epochs": {"type": "int", "low": 1, "high": 2}}}, "fixed for the whole"),
    ({"search_space": {"hidden": {"type": "int", "low": 4, "high": 100_000}}},
     "search_space.hidden = 100000.hidden: at most 4,096"),
    ({"search_space": {"spectrum_state": {"type": "categorical", "choices": ["sideways"]}}},
     "spectrum_state must be 'auto', 'full' or 'hidden'"),
    ({"settings": {"spectrum_steps": 0}}, "settings: spectrum_steps must be positive"),
    ({"settings": {"spectrum_k": "all"}}, "setting spectrum_k must be int or null"),
    ({"settings": {"layers": [1, 2]}}, "settings.layers: a setting is a number, a string"),
    ({"settings": {"steps": 10**8}}, "settings.steps: at most 1,000,000"),
    ({"task": "no spaces"}, "task"),
])
def test_a_foreign_study_gets_the_generic_checks(client, change, message):
    r = create(client, **change)
    assert r.status_code == 422 and message in r.text, r.text


def test_a_foreign_study_goes_only_to_workers_with_its_task_at_one_version(client):
    r = create(client)
    assert r.status_code == 201, r.text
    assert r.json()["task_version"] is None
    assert lease(client, tasks=["smnist", "charrnn", "signal"]) is None  # a stock worker
    got = lease(client, tasks=["forecast"], versions={"forecast": "2"})
    assert got["task"] == "forecast" and got["task_version"] == "2"
    assert set(got["params"]) == {"hidden", "lr"} and 4 <= got["params"]["hidden"] <= 32
    # the spec's settings as given: the workers' task applies its own defaults
    assert got["settings"] == {"window": 16, "spectrum_steps": 20, "epochs": 2}
    assert client.get(f"{API}/studies/f", headers=USER).json()["task_version"] == "2"
    assert lease(client, tasks=["forecast"], versions={"forecast": "3"}) is None
    assert lease(client, tasks=["forecast"], versions={"forecast": "2"}) is not None


def test_a_foreign_trials_first_spectrum_fixes_its_length(client):
    create(client)
    got = lease(client, tasks=["forecast"], versions={"forecast": "1"})
    assert report(client, got, epoch=0, size=5).status_code == 200
    r = report(client, got, epoch=1, size=6)
    assert r.status_code == 422 and "has 6 exponents; this trial of f reports 5" in r.text
    assert report(client, got, epoch=1, size=5).status_code == 200


def test_a_study_of_an_installed_zoo_task_records_its_version(client):
    from tests.service.support import study

    r = client.post(f"{API}/studies", json=study(), headers=USER)
    assert r.json()["task_version"] == "1"
    assert lease(client, tasks=["smnist"], versions={"smnist": "0"}) is None
    assert lease(client, tasks=["smnist"], versions={"smnist": "1"})["task_version"] == "1"
    assert lease(client) is not None  # a worker that names no versions is not checked


@pytest.fixture
def toy_installed(monkeypatch):
    monkeypatch.setattr(registry._TASKS, "_items", dict(registry._TASKS._items))
    monkeypatch.delitem(sys.modules, "tests.tasks.toy_plugin", raising=False)
    import_task_module("tests.tasks.toy_plugin")


def test_an_installed_plugin_task_is_checked_in_full(client, toy_installed):
    toy = {"name": "t", "task": "toy_echo", "budget": 2, "epochs": 1}
    r = client.post(f"{API}/studies", json=toy, headers=USER)  # the task's own space
    assert r.status_code == 201 and r.json()["task_version"] == "3", r.text
    bad = {**toy, "name": "t2", "search_space": {"depth": {"type": "int", "low": 1, "high": 2}}}
    r = client.post(f"{API}/studies", json=bad, headers=USER)
    assert r.status_code == 422 and "unknown parameter for task toy_echo" in r.text
    bad = {**toy, "name": "t3", "settings": {"window": 16}}
    r = client.post(f"{API}/studies", json=bad, headers=USER)
    assert r.status_code == 422 and "unknown setting(s) window" in r.text
    got = lease(client, tasks=["toy_echo"], versions={"toy_echo": "3"})
    assert got["settings"]["lr"] == 1e-3 and got["settings"]["batch_size"] == 64  # resolved
    r = report(client, got, epoch=0, size=got["params"]["hidden"] + 1)
    assert r.status_code == 422 and f"reports {got['params']['hidden']}" in r.text


def test_the_version_is_stored_with_the_study(client, settings):
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    create(client)
    lease(client, tasks=["forecast"], versions={"forecast": "7"})
    engine = create_engine(settings.database_url)
    with Session(engine) as s:
        assert s.scalar(select(StudyRow.task_version)) == "7"
    engine.dispose()
