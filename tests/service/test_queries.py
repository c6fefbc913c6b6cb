"""What users read: trials ranked, filtered and cut; the model's status."""

import pytest

from tests.service.support import API, USER, lease, report, result, study


def test_trials_are_ranked_filtered_and_cut(client):
    client.post(f"{API}/studies", json=study(budget=4), headers=USER)
    values = [3.0, 1.0, 2.0]
    for v in values:
        got = lease(client)
        report(client, got, value=v + 1)
        result(client, got, value=v)
    running = lease(client)
    report(client, running, value=9.0)
    ranked = client.get(f"{API}/studies/s/trials", headers=USER).json()["data"]
    assert [t["value"] for t in ranked] == [1.0, 2.0, 3.0, None]
    assert ranked[-1]["state"] == "running" and ranked[-1]["last_value"] == 9.0
    assert ranked[0]["epochs"] == 1 and ranked[0]["max_le"] == pytest.approx(0.1)
    assert ranked[0]["started_at"] <= ranked[0]["finished_at"] <= ranked[-1]["started_at"]
    assert ranked[-1]["finished_at"] is None
    top = client.get(f"{API}/studies/s/trials?top=2&state=complete", headers=USER).json()
    assert top["count"] == 2 and [t["value"] for t in top["data"]] == [1.0, 2.0]
    assert client.get(f"{API}/studies/s/trials?state=odd", headers=USER).status_code == 422
    assert client.get(f"{API}/studies/s/trials/99", headers=USER).status_code == 404


def test_model_status_before_any_model(client):
    client.post(f"{API}/studies", json=study(), headers=USER)
    status = client.get(f"{API}/studies/s/model", headers=USER).json()
    assert status == {"pruner": "aelle", "fitting": False, "in_use": None, "models_kept": 0,
                      "latest": None}
    assert client.get(f"{API}/studies/s/model/bytes", headers=USER).status_code == 404


def test_lists_are_paged_and_count_them_all(client):
    for name in ("a", "b", "c"):
        client.post(f"{API}/studies", json=study(name=name, budget=3), headers=USER)
    page = client.get(f"{API}/studies?limit=2&offset=1", headers=USER).json()
    assert [s["name"] for s in page["data"]] == ["b", "c"] and page["count"] == 3
    assert page["offset"] == 1 and page["limit"] == 2
    for _ in range(3):
        lease(client)
    trials = client.get(f"{API}/studies/a/trials?order=number&limit=1&offset=2",
                        headers=USER).json()
    assert [t["number"] for t in trials["data"]] == [2] and trials["count"] == 3
    everything = client.get(f"{API}/studies/a/trials", headers=USER).json()
    assert everything["count"] == 3 and len(everything["data"]) == 3
    assert client.get(f"{API}/studies?limit=0", headers=USER).status_code == 422
