"""Every spec is checked whole when it is created (the task's checks of every parameter its
space can produce, finite bounds of sane magnitude, a limit on every size, count and duration,
no NaN or Infinity anywhere), and a stored study that proves broken later is quarantined while
the others keep working."""

import json

import pytest
from sqlalchemy import update

from service.db import LeaseRow, StudyRow
from tests.service.support import API, USER, WORKER, lease, study

FLOAT = {"type": "float"}


def space(**entries):
    return {"search_space": entries}


@pytest.mark.parametrize("change, message", [
    # values the task itself refuses, reachable only through the space
    (space(hidden={"type": "int", "low": -4, "high": 8}), "search_space.hidden = -4"),
    (space(arch={"type": "categorical", "choices": ["gru", "transformer"]}),
     "search_space.arch = 'transformer': unknown arch"),
    (space(spectrum_k={"type": "int", "low": 0, "high": 4}), "search_space.spectrum_k = 0"),
    (space(spectrum_state={"type": "categorical", "choices": ["hidden", "sideways"]}),
     "search_space.spectrum_state = 'sideways'"),
    (space(epochs={"type": "int", "low": 1, "high": 3}), "search_space.epochs: epochs is fixed"),
    # bounds: finite and of sane magnitude
    (space(p_gru={**FLOAT, "low": -1e308, "high": 1e308}), "search_space.p_gru: low and high"),
    (space(hidden={"type": "int", "low": 1, "high": 10**9}), "search_space.hidden = 1000000000"),
    (space(arch={"type": "categorical", "choices": ["gru"] * 2}), "repeat"),
    # limits on sizes, counts and durations
    ({"settings": {"hidden": 10**6}}, "settings.hidden: at most 4,096"),
    ({"settings": {"spectrum_steps": 10**12}}, "settings.spectrum_steps"),
    ({"epochs": None, "settings": {"epochs": 10**12}}, "settings.epochs"),
    ({"pruner": {"name": "aelle", "settings": {"config": {"dim": 10**9}}}},
     "pruner.settings.config.dim: at most 65,536"),
    ({"pruner": {"name": "aelle", "settings": {"config": {"epochs": 10**12}}}},
     "pruner.settings.config.epochs"),
    ({"pruner": {"name": "aelle", "settings": {"n_startup_trials": 10**12}}},
     "pruner.settings.n_startup_trials"),
    ({"pruner": {"name": "median", "settings": {"n_warmup_steps": 10**12}}},
     "pruner.settings.n_warmup_steps"),
    ({"sampler": {"name": "tpe", "seed": 2**40}}, "seed"),
])
def test_a_spec_is_refused_whole_naming_the_field(client, change, message):
    r = client.post(f"{API}/studies", json={**study(), **change}, headers=USER)
    assert r.status_code == 422, r.text
    assert message in str(r.json()["detail"]), r.text
    assert client.get(f"{API}/studies", headers=USER).json()["count"] == 0  # nothing stored


@pytest.mark.parametrize("literal, where", [
    ('"pruner": {"name": "aelle", "settings": {"quantile": NaN}}', "pruner.settings.quantile"),
    ('"pruner": {"name": "median", "settings": {"n_warmup_steps": Infinity}}',
     "pruner.settings.n_warmup_steps"),
    ('"search_space": {"p_gru": {"type": "float", "low": -Infinity, "high": 1}}',
     "search_space.p_gru.low"),
    ('"settings": {"lr": 1e999}', "settings.lr"),
    ('"search_space": {"arch": {"type": "categorical", "choices": ["gru", NaN]}}',
     "search_space.arch.choices[1]"),
])
def test_nan_and_infinity_literals_are_refused_naming_the_field(client, literal, where):
    body = json.dumps({k: v for k, v in study().items() if k not in ("pruner", "settings",
                                                                      "search_space")})
    body = body[:-1] + ", " + literal + "}"
    r = client.post(f"{API}/studies", content=body,
                    headers={**USER, "content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{where} must be finite"), r.text
    assert client.get(f"{API}/studies", headers=USER).json()["count"] == 0


def test_a_big_chunked_body_is_413_not_400(client):
    def chunks():
        yield b'{"name": "'
        for _ in range(64):
            yield b"x" * 65536
        yield b'"}'

    r = client.post(f"{API}/studies", content=chunks(),
                    headers={**USER, "content-type": "application/json"})
    assert r.status_code == 413


def _break(client, name, spec_change):
    """Change a stored spec behind the coordinator's back, as an older coordinator (or a
    hand-edit) could have stored it, and make the coordinator read it again."""
    coordinator = client.app.state.coordinator
    row = coordinator.studies.row(name)
    spec = {**row.spec, **spec_change(row.spec)}
    with coordinator.db.session() as s:
        s.execute(update(StudyRow).where(StudyRow.study_id == row.study_id).values(spec=spec))
    coordinator.studies._active.pop(row.study_id, None)  # as after a restart


def test_a_stored_broken_study_is_quarantined_and_the_others_keep_working(client):
    client.post(f"{API}/studies", json=study(name="broken", budget=3), headers=USER)
    client.post(f"{API}/studies", json=study(name="fine", budget=3), headers=USER)
    _break(client, "broken", lambda spec: {"pruner": {"name": "aelle",
                                                      "settings": {"quantile": 7.0}}})
    listed = client.get(f"{API}/studies", headers=USER)
    assert listed.status_code == 200, listed.text
    by_name = {s["name"]: s for s in listed.json()["data"]}
    assert "quantile" in by_name["broken"]["quarantine"]
    assert by_name["fine"]["quarantine"] is None
    one = client.get(f"{API}/studies/broken", headers=USER).json()
    assert one["quarantine"] == by_name["broken"]["quarantine"] and one["stopped"] is True
    assert lease(client)["study"] == "fine"  # leases pass it by
    r = client.get(f"{API}/studies/broken/trials", headers=USER)
    assert r.status_code == 409 and "quarantined" in r.json()["detail"]


def test_a_space_that_cannot_be_sampled_costs_no_budget_and_no_trial_runs(client):
    client.post(f"{API}/studies", json=study(name="huge", budget=2), headers=USER)
    client.post(f"{API}/studies", json=study(name="fine", budget=2), headers=USER)
    _break(client, "huge", lambda spec: {"search_space": {
        "p_gru": {**FLOAT, "low": -1e308, "high": 1e308},
        "arch": {"type": "categorical", "choices": ["gru"]}}})
    coordinator = client.app.state.coordinator
    # the stored spec fails the checks a new one passes: found on load, quarantined
    got = lease(client)
    assert got["study"] == "fine"
    huge = client.get(f"{API}/studies/huge", headers=USER).json()
    assert "search_space.p_gru" in huge["quarantine"] and huge["used"] == 0
    with coordinator.db.session() as s:
        assert s.query(LeaseRow).count() == 1


def test_a_space_that_fails_at_sampling_is_quarantined_without_a_running_trial(client,
                                                                               monkeypatch):
    client.post(f"{API}/studies", json=study(name="bad", budget=2), headers=USER)
    client.post(f"{API}/studies", json=study(name="fine", budget=2), headers=USER)
    coordinator = client.app.state.coordinator
    from tasks.smnist import SMNIST

    def boom(self, trial, space=None, fixed=None):
        if trial.study.study_name == "bad":
            raise OverflowError("range too wide")
        return original(self, trial, space, fixed)

    original = SMNIST.suggest
    monkeypatch.setattr(SMNIST, "suggest", boom)
    assert lease(client)["study"] == "fine"
    bad = client.get(f"{API}/studies/bad", headers=USER).json()
    assert "OverflowError" in bad["quarantine"] and bad["used"] == 0
    assert bad["counts"] == {"failed": 1}  # the trial it asked for: failed, not running
    sid = coordinator.studies.row("bad").study_id
    assert coordinator.storage.get_all_trials(sid)[0].user_attrs["aelle:reason"].startswith(
        "its parameters could not be sampled")
    r = client.post(f"{API}/leases", json={}, headers=WORKER)
    assert r.json()["study"] == "fine"
