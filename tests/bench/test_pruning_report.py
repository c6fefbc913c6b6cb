"""The pruning benchmark's accounting on hand-made studies (no training, no ../shared)."""

import math

import pytest

from bench.accounting import evaluate, one_environment, oracle_share, read_lines, summarise
from bench.pruning_report import report


def trial(number, state, epochs, value=None, finished="2026-01-01T00:00:0", shadow=None,
          params=None):
    return {"number": number, "state": state, "epochs": epochs, "value": value,
            "last_value": value, "params": params or {"x": number}, "max_le": None,
            "mean_le": None, "prediction": None, "reason": None, "retry_of": None,
            "started_at": None, "finished_at": f"{finished}{number}",
            "shadow_first_prune": shadow, "shadow_max_le": {"1": 0.25}}


def study(variant, trials):
    return {"variant": variant, "seed": 0, "seconds": 1.0, "trials": trials,
            "spec": {"budget": len(trials), "epochs": 8, "settings": {}}}


# shadow: the first epoch AeLLE would have pruned at (8, the last, stops nothing)
REFERENCE = study("none", [trial(0, "complete", 9, 1.0, shadow=8),
                           trial(1, "complete", 9, 2.0, shadow=1),
                           trial(2, "complete", 9, 3.0), trial(3, "pruned", 2, None, shadow=0)])


def test_pruned_trials_are_judged_by_what_they_would_have_reached():
    run = study("aelle", [trial(0, "complete", 9, 1.0), trial(1, "pruned", 3),
                          trial(2, "complete", 9, 3.0), trial(3, "pruned", 1)])
    r = evaluate(run, REFERENCE)
    # better half of the reference: trials 0 and 1 (3 diverged counts as the worst)
    assert r["precision"] == 0.5 and r["recall"] == 0.5
    assert r["epochs"] == 8 + 2 + 8 + 0 and r["reference_epochs"] == 8 * 3 + 1
    assert r["best"] == 1.0 and r["regret"] == 0.0 and r["pruned"] == 2
    assert r["stop_epochs"] == [0, 2]
    [wrong] = r["wrongly_pruned"]
    assert wrong["number"] == 1 and wrong["stopped_at"] == 2 and wrong["rank"] == 2
    assert r["curve"] == [(8, 1.0), (10, 1.0), (18, 1.0), (18, 1.0)]


def test_the_reference_row_scores_the_shadow_decisions_and_a_lost_best_is_regret():
    r = evaluate(REFERENCE, REFERENCE)
    assert r["recall"] == 0.5 and r["precision"] == 0.5 and r["stop_epochs"] == [0, 1]
    run = study("median", [trial(0, "pruned", 2), trial(1, "complete", 9, 2.0),
                           trial(2, "complete", 9, 3.0), trial(3, "pruned", 2)])
    r = evaluate(run, REFERENCE)
    assert r["regret"] == pytest.approx(1.0) and r["best"] == 2.0


def test_trials_whose_parameters_differ_from_the_reference_are_not_scored():
    run = study("aelle", [trial(0, "complete", 9, 1.0, params={"x": 99}),
                          trial(1, "complete", 9, 2.0), trial(2, "complete", 9, 3.0),
                          trial(3, "pruned", 1)])
    r = evaluate(run, REFERENCE)
    assert r["unmatched"] == 1 and r["recall"] == 1.0 and not math.isnan(r["precision"])


def test_the_report_states_the_figures_and_draws_the_curves(tmp_path):
    run = study("aelle", [trial(0, "complete", 9, 1.0), trial(1, "pruned", 3),
                          trial(2, "pruned", 1), trial(3, "pruned", 1)])
    summary = report("smnist", [REFERENCE, run], tmp_path / "r.md", tmp_path / "r.png")
    text = (tmp_path / "r.md").read_text()
    # the aelle row: 10 of the reference's 25 epochs, one trial of the better half kept of two
    assert "| aelle | 1 | 10 | 40 % | 1.0000 | 0.00 % / 0.00 % | 1.00 | 0.50 |" in text
    assert "| aelle | 0 / 2 | - | 1 / 1 | - |" in text  # stops by epoch: better half / all
    assert "trial 1 {'x': 1} stopped at epoch 2" in text
    assert "| 0 | 64 % |" in text  # the oracle without start-up
    for prose in ("Targets", "Tried", "Proposed next", "missed"):
        assert prose not in text
    assert (tmp_path / "r.png").stat().st_size > 0 and (tmp_path / "r.json").exists()
    assert summary["table"]["aelle"]["epoch_share"] == pytest.approx(10 / 25)
    assert list(summary["table"]) == ["none", "aelle"]  # the variants' order, not the lines'


def test_the_summary_orders_the_variants_and_means_over_seeds():
    rows = [{**evaluate(REFERENCE, REFERENCE), "seed": s} for s in (0, 1)]
    rows.insert(0, evaluate(study("median", REFERENCE["trials"]), REFERENCE))
    table = summarise(rows, ("none", "aelle", "median"))
    assert list(table) == ["none", "median"] and table["none"]["seeds"] == 2
    assert table["none"]["epoch_share"] == 1.0 and table["none"]["epoch_share_se"] == 0.0
    assert math.isnan(table["median"]["epoch_share_se"])  # one seed: no standard error


def test_a_line_that_does_not_parse_names_the_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    assert read_lines(path) == []
    path.write_text('{"a": 1}\n\n{"b": \n')
    with pytest.raises(SystemExit, match=r"r.jsonl:3: not a JSON line .*; remove it"):
        read_lines(path)


def test_a_trial_that_ends_elsewhere_than_in_the_reference_is_counted_unreproduced():
    run = study("median", [trial(0, "complete", 9, 1.0), trial(1, "complete", 9, 2.5),
                           trial(2, "pruned", 2), trial(3, "pruned", 1)])
    assert evaluate(run, REFERENCE)["unreproduced"] == 1
    assert evaluate(REFERENCE, REFERENCE)["unreproduced"] == 0


def test_the_report_keeps_the_newest_environment_only():
    old = {**REFERENCE, "env": {"cpu": "a"}}
    new = {**REFERENCE, "env": {"cpu": "b"}}
    other = {**study("aelle", REFERENCE["trials"]), "env": {"cpu": "a"}}
    kept, left_out = one_environment([old, other, new])
    assert kept == [new] and left_out == 1


def test_the_oracle_bound_counts_the_start_up_trials_it_must_train():
    # better half: trials 0 and 1; 85 % of 2 is 2 trials of 8 epochs, of 25 trained
    assert oracle_share(REFERENCE, 0) == pytest.approx(16 / 25)
    # the start-up trains trials 0-2 through; two of them are the better half already
    assert oracle_share(REFERENCE, 3) == pytest.approx(24 / 25)
    # a start-up longer than the study trains every trial through, no more
    assert oracle_share(REFERENCE, 10) == pytest.approx(32 / 25)
