"""The replay of pruning rules on a recorded population (a small synthetic one, no training)."""

import optuna
import pytest

from aelle import ShadowPruner
from bench import pruning_replay as replay
from bench import rules
from bench.accounting import evaluate

EPOCHS = 4


def network(quality: float) -> dict:
    """Loss falls from 2.3 towards 1 + quality; the spectrum flattens with quality."""
    epochs = [{"epoch": e, "value": 1.0 + quality + 1.3 / (e + 1),
               "spectrum": [0.1 - (0.2 + quality) * i for i in range(6)]}
              for e in range(EPOCHS + 1)]
    return {"state": "complete", "params": {"q": quality}, "epochs": epochs}


POPULATION = [network(q / 10) for q in range(11)] + [
    {"state": "diverged", "params": {"q": 9.9}, "epochs": []}]


@pytest.fixture(autouse=True)
def plain_reference(monkeypatch):
    # the reference runs AeLLE in shadow mode; a shadowed no-op keeps this test fast
    monkeypatch.setitem(rules.RULES, "none", lambda seed, epochs, prev: ShadowPruner(
        optuna.pruners.NopPruner()))
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_reference_trains_every_network_and_a_diverged_one_not_at_all():
    run = replay.replay(POPULATION, "none", 0, len(POPULATION), EPOCHS, None)
    states = sorted(t["state"] for t in run["trials"])
    assert states == ["complete"] * 11 + ["diverged"]
    x = evaluate(run, run)
    assert x["epochs"] == 11 * EPOCHS and x["regret"] == 0.0


def test_the_median_rule_stops_the_slow_networks_and_keeps_the_best():
    reference = replay.replay(POPULATION, "none", 1, len(POPULATION), EPOCHS, None)
    run = replay.replay(POPULATION, "median", 1, len(POPULATION), EPOCHS, None)
    pruned = [t for t in run["trials"] if t["state"] == "pruned"]
    assert pruned and all(t["epochs"] < EPOCHS + 1 for t in pruned)
    x = evaluate(run, reference)
    assert x["epochs"] < x["reference_epochs"]
    assert x["regret"] == 0.0  # the best network (q = 0) is never behind the median
    # the same seed draws the same networks in the same order, whatever the rule
    assert [t["params"] for t in run["trials"]] == [t["params"] for t in reference["trials"]]


def test_the_pretrained_rules_learn_from_networks_outside_the_replayed_study():
    for seed in range(5):
        taken = {tuple(POPULATION[i]["params"].items())
                 for i in replay.study_order(len(POPULATION), seed, 6)}
        previous = replay.previous_study(POPULATION, seed, 6, EPOCHS)
        assert previous  # 6 networks are left beside the study's 6 (one of them diverged)
        finals = {round(p["final_value"], 12) for p in previous}
        assert not finals & {round(1.0 + q[0][1] + 1.3 / (EPOCHS + 1), 12) for q in taken}
    with pytest.raises(SystemExit, match="none is left"):
        replay.previous_study(POPULATION, 0, len(POPULATION), EPOCHS)
