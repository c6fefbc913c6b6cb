"""The plain-Optuna example runs a real study end to end on a tiny task, and AeLLE prunes."""

import importlib.util
from pathlib import Path

import optuna
from optuna.trial import TrialState

from aelle import AeLLEConfig, AeLLEPruner
from tests.tasks.conftest import TINY

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plain_optuna.py"
SETTINGS = {**TINY["smnist"], "epochs": 2, "train_size": 384, "val_size": 192}


def load_example():
    spec = importlib.util.spec_from_file_location("plain_optuna", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_study_with_the_aelle_pruner_end_to_end():
    example = load_example()
    config = AeLLEConfig(dim=32, hidden=(32,), latent=4, epochs=100, warmup_epochs=30,
                         ramp_epochs=30, components=2, seed=0)
    pruner = AeLLEPruner(n_startup_trials=4, retrain_every=2, explore=0.0, seed=0,
                         config=config, background=False)
    study = example.run_study("smnist", trials=14, pruner=pruner, settings=SETTINGS, seed=0)
    trials = study.trials
    assert len(trials) == 14 and all(t.state != TrialState.FAIL for t in trials)
    # every reported epoch left its spectrum and a recorded decision on the trial
    for t in trials:
        for step in t.intermediate_values:
            # coRNN and LEM are probed in their full (y, z) state: two vectors of `hidden`
            two = t.params["arch"] in ("cornn", "lem")
            assert len(t.user_attrs[f"aelle:spectrum:{step}"]) == SETTINGS["hidden"] * (1 + two)
        assert t.user_attrs["aelle:decision"] in ("fallback", "continue", "prune", "diverged")
    decisions = [t.user_attrs["aelle:decision"] for t in trials]
    assert decisions[:4] == ["fallback"] * 4  # before n_startup_trials complete
    by_model = [t for t in trials if t.user_attrs["aelle:decision"] == "prune"]
    assert by_model and all(t.state == TrialState.PRUNED for t in by_model)
    assert all(t.user_attrs["aelle:prediction"] > t.user_attrs["aelle:cut"] for t in by_model)
    assert pruner.model is not None
    assert "complete" in example.summary(study)


def test_cli_runs_a_baseline_and_names_a_bad_setting(capsys):
    example = load_example()
    args = [f"--set={k}={v}" for k, v in SETTINGS.items()]
    assert example.main(["--trials", "3", "--startup", "1", "--pruner", "max_le", *args]) == 0
    assert capsys.readouterr().out.startswith("3 trials: ")
    assert example.main(["--trials", "1", "--set", "epochs=0"]) == 2
    assert "epochs must be positive" in capsys.readouterr().err
    optuna.logging.set_verbosity(optuna.logging.INFO)


def test_a_planned_screen_trains_the_best_screened_configurations_again(capsys):
    example = load_example()
    study = example.run_study("smnist", trials=6, settings=SETTINGS, seed=0, finalists=2)
    screened, finalists = study.trials[:6], study.trials[6:]
    assert [t.state for t in screened] == [TrialState.PRUNED] * 6
    assert [t.state for t in finalists] == [TrialState.COMPLETE] * 2
    for t in finalists:  # the screened configuration, its untrained network again
        first = screened[t.user_attrs["aelle:rerun_of"]]
        assert t.params == first.params
        assert t.intermediate_values[0] == first.intermediate_values[0]
    args = [f"--set={k}={v}" for k, v in SETTINGS.items()]
    assert example.main(["--trials", "4", "--finalists", "1", *args]) == 0
    assert capsys.readouterr().out.startswith("5 trials: 1 complete, 4 pruned")
    optuna.logging.set_verbosity(optuna.logging.INFO)
