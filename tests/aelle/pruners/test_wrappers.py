"""Pruners by composition: ByStep (spectrum, then a learning curve), shadow mode, and any
Optuna pruner's verdict as a decision."""

import optuna
import pytest
from optuna.trial import TrialState

from aelle import AeLLEPruner, ByStep, ShadowPruner
from aelle.pruners import PlainPruner, deciding

from .synthetic import FAST, aelle_study, final, seed_completed, step_once


def curve_study(n_completed=16):
    study, pruner = aelle_study(n_completed=n_completed)
    curve = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    study.pruner = ByStep(pruner, curve, from_step=1)
    return study, pruner


def test_the_spectrum_decides_epoch_0_and_the_curve_after():
    study, _ = curve_study()
    pruned, attrs = step_once(study, 0.95)  # epoch 0: a bad spectrum is pruned
    assert pruned and attrs["decision"] == "prune"
    # epoch 1: the curve decides; the model's prediction is kept as information
    pruned, attrs = step_once(study, 0.95, step=1, value=final(0.0))
    assert not pruned and attrs["decision"] == "curve" and "continues" in attrs["reason"]
    assert attrs["prediction"] > final(0.5)  # the model still calls the spectrum bad
    pruned, attrs = step_once(study, 0.05, step=1, value=final(1.0) + 5.0)
    assert pruned and attrs["decision"] == "curve" and "MedianPruner prunes" in attrs["reason"]


def test_a_curve_stopped_trial_stands_in_the_cut_by_its_prediction():
    study, _ = curve_study(n_completed=9)
    values = [t.value for t in study.get_trials(states=(TrialState.COMPLETE,))]
    _, stopped = step_once(study, 0.05, step=1, value=final(1.0) + 5.0)
    _, attrs = step_once(study, 0.05)  # epoch 0 again: the spectrum pruner's cut
    assert attrs["cut"] == pytest.approx(sorted_median([*values, stopped["prediction"]]))


def test_before_there_is_a_model_a_curve_stopped_trial_stands_in_by_its_value():
    study, _ = curve_study(n_completed=1)  # too little to fit: no model yet
    pruned, attrs = step_once(study, 0.5, step=2, value=99.0)
    assert pruned and attrs["decision"] == "curve" and "prediction" not in attrs
    seed_completed(study, 15, seed=4)
    values = [t.value for t in study.get_trials(states=(TrialState.COMPLETE,))]
    _, attrs = step_once(study, 0.05)
    assert attrs["cut"] == pytest.approx(sorted_median([*values, 99.0]))


def test_divergence_prunes_after_the_hand_over_too():
    study, _ = curve_study()
    pruned, attrs = step_once(study, 0.5, step=2, value=float("nan"))
    assert pruned and attrs["decision"] == "diverged"


def test_by_step_arguments_are_validated():
    pruner = AeLLEPruner(config=FAST)
    with pytest.raises(ValueError, match="from_step"):
        ByStep(pruner, optuna.pruners.MedianPruner(), from_step=0)
    with pytest.raises(ValueError, match="learning-curve pruner"):
        ByStep(pruner, AeLLEPruner(config=FAST))
    with pytest.raises(ValueError, match="pruner must be SpectrumPruner"):
        ByStep(optuna.pruners.MedianPruner(), optuna.pruners.MedianPruner())


def test_shadow_records_what_the_pruner_would_do_but_never_prunes():
    inner = AeLLEPruner(n_startup_trials=8, explore=0.0, seed=0, config=FAST, background=False)
    study = optuna.create_study(pruner=ShadowPruner(inner))
    seed_completed(study, 16)
    pruned, attrs = step_once(study, 0.95)
    assert not pruned and attrs["shadow_prune"] is True and attrs["decision"] == "prune"
    assert attrs["shadow_first_prune_step"] == 0
    pruned, attrs = step_once(study, 0.05)
    assert not pruned and attrs["shadow_prune"] is False
    assert "shadow_first_prune_step" not in attrs
    with pytest.raises(ValueError, match="optuna pruner"):
        ShadowPruner("median")


def test_shadow_of_a_plain_optuna_pruner():
    study = optuna.create_study(pruner=ShadowPruner(optuna.pruners.ThresholdPruner(upper=2.0)))
    pruned, attrs = step_once(study, 0.5, value=3.0, with_spectrum=False)
    assert not pruned and attrs["shadow_prune"] is True and attrs["decision"] == "curve"


def test_any_optuna_pruner_decides_by_value():
    plain = deciding(optuna.pruners.ThresholdPruner(upper=2.0))
    assert isinstance(plain, PlainPruner) and deciding(plain) is plain
    study = optuna.create_study()
    trial = study.ask()
    trial.report(3.0, 0)
    decision = plain.decide(study, study.trials[0], spectrum=None, completed=[])
    assert decision.prune and decision.describe() == "curve: ThresholdPruner prunes"
    trial.report(1.0, 1)
    decision = plain.decide(study, study.trials[0], spectrum=None, completed=[])
    assert not decision.prune and decision.describe() is None


def sorted_median(values):
    import numpy as np

    return float(np.median(values))
