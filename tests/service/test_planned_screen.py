"""A planned screen through the API: the joint pruner with ``finalists`` stops every
configuration of the trial budget at epoch 0, then the coordinator queues the best to run again
from the same seed, taking no trial budget, as many as the epoch budget pays for."""

import pytest

from tests.service.support import API, USER, lease, report, result, study


def planned(finalists=2, **kw):
    return study(pruner={"name": "joint", "settings": {"finalists": finalists}}, **kw)


def screen(client, losses):
    """Lease, report epoch 0 with each loss and end each trial as told; the predicted finals
    by trial number."""
    predicted = {}
    for loss in losses:
        got = lease(client)
        answer = report(client, got, epoch=0, value=loss).json()
        assert answer["decision"] == "prune", answer
        assert answer["reason"].startswith("prune: JointPruner: planned screen: predicted")
        predicted[got["number"]] = answer["prediction"]
        assert result(client, got, state="pruned", value=None).status_code == 200
    return predicted


def summary(client, name="s"):
    return client.get(f"{API}/studies/{name}", headers=USER).json()


def train(client, got, epochs=2):
    for epoch in range(epochs + 1):
        assert report(client, got, epoch=epoch, value=2.0 - 0.1 * epoch).json()[
            "decision"] == "continue"
    assert result(client, got, value=1.8).status_code == 200


def test_the_best_screened_configurations_run_again_from_their_seed(client):
    assert client.post(f"{API}/studies", json=planned(budget=5), headers=USER).status_code == 201
    predicted = screen(client, [2.30, 2.31, 2.29, 2.35, 2.28])
    got = summary(client)
    # the screen is over: its finalists wait, and the study is not done
    assert got["used"] == 5 and got["spent"] and got["counts"] == {"pruned": 5, "waiting": 2}
    best = sorted(predicted, key=lambda n: (predicted[n], n))[:2]
    trials = {t["number"]: t for t in
              client.get(f"{API}/studies/s/trials", headers=USER).json()["data"]}
    finalists = []
    for _ in range(2):
        got = lease(client)
        assert got["retry_of"] in best and got["seed"] == got["retry_of"] != got["number"]
        assert got["params"] == trials[got["retry_of"]]["params"]
        train(client, got)
        finalists.append(got["retry_of"])
    assert finalists == best  # best first
    assert lease(client)["trial_id"] is None
    got = summary(client)
    assert got["used"] == 5 and got["counts"] == {"pruned": 5, "complete": 2}
    assert got["epochs_used"] == 4
    # three configurations never trained; the two screened ones trained after all
    assert got["epochs_saved"] == 3 * 2


def test_an_epoch_budget_pays_for_more_finalists_than_asked(client):
    spec = planned(finalists=1, budget=4, budget_epochs=4)
    assert client.post(f"{API}/studies", json=spec, headers=USER).status_code == 201
    screen(client, [2.30, 2.31, 2.29, 2.35])
    assert summary(client)["counts"]["waiting"] == 2  # 4 epochs: two trainings of 2
    for _ in range(2):
        train(client, lease(client))
    assert lease(client)["trial_id"] is None
    got = summary(client)
    assert (got["epochs_used"], got["spent"], got["counts"]) == (4, True, {"pruned": 4,
                                                                         "complete": 2})


def test_a_finalist_that_fails_is_retried_with_its_seed(client):
    client.post(f"{API}/studies", json=planned(finalists=1, budget=2), headers=USER)
    screen(client, [2.30, 2.31])
    first = lease(client)
    assert result(client, first, state="failed", value=None, retry=True).status_code == 200
    again = lease(client)
    assert again["params"] == first["params"] and again["seed"] == first["seed"]
    assert again["retry_of"] == first["number"]
    train(client, again)
    assert lease(client)["trial_id"] is None  # one finalist in all: the retry was it


@pytest.mark.parametrize(("change", "words"), [
    ({"budget": None}, "give budget (trials)"),
    ({"direction": "maximize"}, "must minimize"),
    ({"shadow": True}, "shadow mode"),
    ({"task": "forecast"}, "no shipped joint model of 'forecast'"),
])
def test_a_planned_screen_that_cannot_run_is_refused_by_name(client, change, words):
    spec = planned(budget=4, budget_epochs=8)
    if change.get("budget", 0) is None:
        del spec["budget"]
    if "shadow" in change:
        spec["pruner"]["shadow"] = True
    if "direction" in change:
        spec["direction"] = "maximize"
    if "task" in change:
        spec.update(task="forecast", settings={}, search_space={
            "hidden": {"type": "int", "low": 4, "high": 32}})
    r = client.post(f"{API}/studies", json=spec, headers=USER)
    assert r.status_code == 422 and words in str(r.json()["detail"]), r.json()
    assert client.get(f"{API}/studies", headers=USER).json()["data"] == []


def test_a_raised_budget_screens_more_and_a_new_best_runs_too(client):
    client.post(f"{API}/studies", json=planned(finalists=1, budget=3), headers=USER)
    first = screen(client, [2.30, 2.31, 2.32])
    train(client, lease(client))
    assert lease(client)["trial_id"] is None
    raised = client.post(f"{API}/studies/s/budget", json={"budget": 5}, headers=USER)
    assert raised.status_code == 200
    more = screen(client, [0.05, 2.40])  # an untrained loss no configuration before had
    assert min(more.values()) < min(first.values())
    got = lease(client)
    assert got["retry_of"] == min(more, key=more.get)  # the new best of the screen
    train(client, got)
    assert lease(client)["trial_id"] is None
    assert summary(client)["counts"] == {"pruned": 5, "complete": 2}


def stored_pruner(client, name):
    return client.get(f"{API}/studies/{name}/spec", headers=USER).json()["pruner"]


def test_the_default_pruner_plans_a_study_that_gives_its_trial_budget(client):
    def create(name, **kw):
        body = {k: v for k, v in study(name=name).items() if k not in ("pruner", "budget")}
        r = client.post(f"{API}/studies", json={**body, **kw}, headers=USER)
        assert r.status_code == 201, r.text
        return stored_pruner(client, name)

    assert create("plan", budget=6)["settings"] == {"finalists": 3}
    assert create("hp", budget=6, pruner={"name": "joint", "settings": {"inputs": "hp"}})[
        "settings"] == {"inputs": "hp", "finalists": 3}
    # no number of configurations to plan with, or a rolling screen asked for: it rolls
    assert create("epochs", budget_epochs=20)["settings"] == {}
    assert create("few", budget=3)["settings"] == {}
    assert create("rolling", budget=6, pruner={"name": "joint", "settings": {
        "finalists": None}})["settings"] == {"finalists": None}
    assert create("quantile", budget=6, pruner={"name": "joint", "settings": {
        "screen_quantile": 0.2}})["settings"] == {"screen_quantile": 0.2}
    assert create("max", budget=6, direction="maximize")["settings"] == {}
    custom = {"hidden": {"type": "int", "low": 4, "high": 8}}
    assert create("own-space", budget=6, search_space=custom)["settings"] == {}
