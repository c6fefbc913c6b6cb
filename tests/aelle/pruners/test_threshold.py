"""The max/mean-LE threshold pruner, the baseline the AeLLE pruner must beat."""

import math

import optuna
import pytest

from aelle import LEThresholdPruner

from .synthetic import seed_completed, step_once


def test_a_fixed_threshold_decides_every_trial_and_is_never_refitted():
    # max LE of spectrum(q) is 0.05 whatever q: a threshold either side decides all trials
    pruner = LEThresholdPruner("max_le", threshold=0.0, n_startup_trials=0, explore=0.0)
    study = optuna.create_study(pruner=pruner)
    pruned, attrs = step_once(study, 0.1)
    assert pruned and attrs["decision"] == "prune" and attrs["model"] == "max_le < 0"
    seed_completed(study, 30)
    pruner.refresh(study)
    assert pruner.model_version == "max_le < 0"
    pruner = LEThresholdPruner("max_le", threshold=0.1, n_startup_trials=0, explore=0.0)
    study = optuna.create_study(pruner=pruner)
    assert not step_once(study, 0.1)[0]


def test_the_mean_le_threshold_is_fitted_on_the_completed_trials():
    pruner = LEThresholdPruner("mean_le", n_startup_trials=8, explore=0.0, seed=0)
    study = optuna.create_study(pruner=pruner)
    seed_completed(study, 30)
    pruned, attrs = step_once(study, 0.95)
    assert pruned and attrs["model"].startswith("mean_le")
    # good trials have the flatter spectra: the fitted rule keeps a high mean LE
    assert ">" in attrs["model"]
    assert not step_once(study, 0.05)[0]


@pytest.mark.parametrize("args, kw, message", [
    (("min_le",), {}, "statistic"),
    ((), {"threshold": math.nan}, "threshold"),
    ((), {"quantile": 0}, "quantile"),
])
def test_arguments_are_validated(args, kw, message):
    with pytest.raises(ValueError, match=message):
        LEThresholdPruner(*args, **kw)
