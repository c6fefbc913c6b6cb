"""Studies through the API: create, show, list, stop; what a spec may say."""

import pytest

from tests.service.support import API, USER, WORKER, lease, study


def test_create_show_list_and_stop_a_study(client):
    r = client.post(f"{API}/studies", json=study(budget=5), headers=USER)
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["name"] == "s" and got["budget"] == 5 and got["used"] == 0
    assert got["pruner"] == "aelle" and got["counts"] == {} and got["best"] is None
    assert client.get(f"{API}/studies/s", headers=USER).json()["budget"] == 5
    assert client.get(f"{API}/studies", headers=USER).json()["count"] == 1
    spec = client.get(f"{API}/studies/s/spec", headers=USER).json()
    assert spec["settings"]["hidden"] == 8 and spec["epochs"] == 2
    assert client.post(f"{API}/studies/s/stop", headers=USER).json()["stopped"] is True
    assert client.post(f"{API}/leases", json={}, headers=WORKER).json()["trial_id"] is None
    assert client.get(f"{API}/studies/nope", headers=USER).status_code == 404


@pytest.mark.parametrize("change, status, message", [
    ({"task": "chess"}, 422, "task: unknown task 'chess'"),
    ({"search_space": {"p_gru": {"type": "float", "low": 2.0, "high": 1.0}}}, 422,
     "search_space.p_gru: low (2.0) is above high (1.0)"),
    ({"search_space": {"arch": {"type": "categorical", "choices": []}}}, 422,
     "search_space.arch: a categorical needs a non-empty list of choices"),
    ({"search_space": {"depth": {"type": "int", "low": 1, "high": 3}}}, 422,
     "search_space.depth: unknown parameter"),
    ({"search_space": {"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}}, 422,
     "search_space.lr: a log range needs low > 0"),
    ({"settings": {"hidden": 0}}, 422, "settings: hidden must be positive"),
    ({"settings": {"colour": "red"}}, 422, "settings: unknown setting"),
    ({"pruner": {"name": "aelle", "settings": {"patience": 3}}}, 422,
     "pruner.settings: unknown for aelle: patience"),
    ({"pruner": {"name": "aelle", "settings": {"quantile": 2}}}, 422, "quantile"),
    ({"pruner": {"name": "aelle", "settings": {"curve": "hyperband"}}}, 422,
     "curve must be one of none, median, study_median, got 'hyperband'"),
    ({"pruner": {"name": "aelle", "settings": {"curve_from": 0}}}, 422, "curve_from"),
    ({"pruner": {"name": "oracle"}}, 422, "pruner"),
    ({"budget": 0}, 422, "budget"),
    ({"name": "has space"}, 422, "name"),
    ({"epochs": -1}, 422, "epochs"),
])
def test_bad_studies_are_refused_naming_the_field(client, change, status, message):
    r = client.post(f"{API}/studies", json={**study(), **change}, headers=USER)
    assert r.status_code == status
    assert message in str(r.json()["detail"])
    assert client.get(f"{API}/studies", headers=USER).json()["count"] == 0  # nothing stored


def test_duplicate_study_name_is_a_conflict_and_the_first_survives(client):
    assert client.post(f"{API}/studies", json=study(budget=4), headers=USER).status_code == 201
    r = client.post(f"{API}/studies", json=study(budget=9), headers=USER)
    assert r.status_code == 409 and "exists" in r.json()["detail"]
    assert client.get(f"{API}/studies/s", headers=USER).json()["budget"] == 4


def test_a_user_search_space_replaces_the_task_default_per_parameter(client):
    space = {"arch": {"type": "categorical", "choices": ["gru"]},
             "p_gru": {"type": "float", "low": 0.5, "high": 0.6}}
    client.post(f"{API}/studies", json=study(search_space=space, budget=3), headers=USER)
    for _ in range(3):
        p = lease(client)["params"]
        assert p["arch"] == "gru" and 0.5 <= p["p_gru"] <= 0.6
