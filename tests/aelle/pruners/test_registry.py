"""One table of pruners by name: what the service, the examples and the benchmarks build."""

import optuna
import pytest

from aelle import AeLLEPruner, ByStep, LEThresholdPruner, StudyMedianPruner
from aelle.model import AeLLEConfig
from aelle.pruners import CURVES, NAMES, SPECTRUM, make, options_of


@pytest.mark.parametrize("name", NAMES)
def test_every_name_builds_a_pruner_with_its_defaults(name):
    assert isinstance(make(name), optuna.pruners.BasePruner)


def test_names_build_what_they_say():
    assert isinstance(make("median", n_startup_trials=3), optuna.pruners.MedianPruner)
    assert isinstance(make("study_median"), StudyMedianPruner)
    assert isinstance(make("patient", wrapped="median", patience=2),
                      optuna.pruners.PatientPruner)
    aelle = make("aelle", config={"dim": 16, "hidden": [16]}, fallback="median")
    assert isinstance(aelle, AeLLEPruner)
    threshold = make("mean_le", threshold=-0.1)
    assert isinstance(threshold, LEThresholdPruner) and threshold.model_version.startswith(
        "mean_le")
    by_step = make("max_le", curve="study_median", curve_from=2)
    assert isinstance(by_step, ByStep) and isinstance(by_step.spectrum_pruner,
                                                      LEThresholdPruner)
    assert set(SPECTRUM) <= set(NAMES) and set(CURVES) <= set(NAMES)


def test_options_come_from_the_signatures():
    assert set(options_of("median")) == {"n_startup_trials", "n_warmup_steps",
                                         "interval_steps", "n_min_trials"}
    assert {"region", "config", "quantile", "curve", "curve_from", "fallback"} <= set(
        options_of("aelle"))
    assert "statistic" not in options_of("max_le") and "threshold" in options_of("max_le")


@pytest.mark.parametrize("name, options, message", [
    ("oracle", {}, "unknown pruner 'oracle'; known: none, median"),
    ("aelle", {"patience": 3}, "unknown for aelle: patience; allowed: "),
    ("aelle", {"curve": "hyperband"},
     "curve must be one of none, median, study_median, got 'hyperband'"),
    ("aelle", {"fallback": "aelle"}, "fallback must be one of"),
    ("aelle", {"curve_from": 0}, "curve_from must be a positive integer"),
    ("aelle", {"config": {"dim": 0}}, "dim"),
    ("median", {"n_startup_trials": -1}, "n_startup_trials"),
    ("patient", {"wrapped": "hyperband"}, "wrapped must be one of"),
])
def test_bad_names_and_options_are_refused_saying_which(name, options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make(name, **options)


def test_a_config_object_passes_through():
    config = AeLLEConfig(dim=16, hidden=(16,))
    assert make("aelle", config=config)._config is config
