"""bench.live's accounting: the live studies' compute counted as the replay counts it, and the
rule it runs as the service's default is that default."""

import pytest

from bench import live
from service.specs import PrunerSpec

COSTS = {"epoch0": 0.05, "spectrum0": 0.4, "spectrum": 0.3}


def test_the_default_rule_is_the_service_default_pruner():
    rule = live.default_rule()
    assert rule == "screen_top_k_hp" and rule in live.at.RULES
    assert live.SERVICE[rule]["name"] == PrunerSpec().name


def test_a_trial_costs_its_training_epochs_and_only_the_spectra_its_rule_reads():
    assert live.trial_cost(0, "none", COSTS) == 0.0
    assert live.trial_cost(1, "none", COSTS) == pytest.approx(0.05)      # screened at epoch 0
    assert live.trial_cost(11, "none", COSTS) == pytest.approx(10.05)
    assert live.trial_cost(11, "first", COSTS) == pytest.approx(10.45)
    assert live.trial_cost(11, "every", COSTS) == pytest.approx(10.05 + 0.4 + 10 * 0.3)


def test_the_timeline_orders_by_trial_number_and_keeps_completed_finals():
    trials = [{"number": 2, "state": "complete", "value": 0.3, "epochs": 11},
              {"number": 0, "state": "pruned", "value": None, "epochs": 1},
              {"number": 1, "state": "complete", "value": 0.5, "epochs": 11}]
    events, spent = live.timeline(trials, "none", COSTS)
    assert events == [(pytest.approx(10.1), 0.5), (pytest.approx(20.15), 0.3)]
    assert spent == pytest.approx(20.15)


def test_a_planned_screen_is_given_the_replays_plan_as_its_budgets():
    assert live.planned_budgets("median", 100, 10, COSTS, 288) == {}
    # 100 epochs: screen while 3 finalists stay paid for, at most the pool, the rest trains
    assert live.planned_budgets("screen_top_k_hp", 100, 10, COSTS, 288) == {
        "budget": 288, "budget_epochs": 85}
    assert live.planned_budgets("screen_top_k_hp", 40, 10, COSTS, 288) == {
        "budget": 200, "budget_epochs": 30}
    with pytest.raises(SystemExit, match="does not pay"):
        live.planned_budgets("screen_top_k_hp", 30, 10, COSTS, 288)
