"""The service's default pruner reads a study's hyperparameters only where they mean what the
shipped model learnt: a zoo task over its own search space."""

import numpy as np
import optuna
import pytest

from service.pruning import ServiceHooks, build_pruner, hyperparameter_reader
from service.specs import SpecError, StudyCreate
from tasks.hyperparameters import HP_FEATURES, hp_features
from tests.service.support import study


def spec(**kw) -> StudyCreate:
    """The tests' study, with the service's default pruner unless one is given."""
    body = study(**kw)
    if "pruner" not in kw:
        del body["pruner"]
    return StudyCreate.model_validate(body)


def test_a_study_with_no_pruner_named_gets_the_screen_of_the_hyperparameters():
    pruner = build_pruner(spec(), ServiceHooks(None))
    assert spec().pruner.name == "joint"
    inner = pruner.wrapped
    assert inner.model.inputs == "hp"


def test_the_reader_maps_the_task_space_and_refuses_another():
    read = hyperparameter_reader(spec(task="smnist"))
    x = read({"arch": "gru", "p_gru": 2.0})
    assert x.shape == (len(HP_FEATURES),) and x[HP_FEATURES.index("arch=gru")] == 1.0
    assert x[HP_FEATURES.index("log2 hidden")] == np.log2(8)  # the tests' tiny network
    custom = {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    assert hyperparameter_reader(spec(task="smnist", search_space=custom)) is None
    assert hyperparameter_reader(spec(task="flipflop")) is None


def test_a_custom_space_falls_back_to_successive_halving_or_the_spectrum_when_asked():
    custom = {"hidden": {"type": "categorical", "choices": [32, 64]}}
    pruner = build_pruner(spec(task="charrnn", settings={}, search_space=custom),
                          ServiceHooks(None))
    inner = pruner.wrapped
    assert isinstance(inner, optuna.pruners.SuccessiveHalvingPruner)
    with pytest.raises(SpecError, match="cannot be read"):
        build_pruner(spec(task="charrnn", settings={}, search_space=custom,
                          pruner={"name": "joint", "settings": {"inputs": "hp"}}),
                     ServiceHooks(None))
    with pytest.raises(SpecError, match="unknown for joint: hp_of"):
        build_pruner(spec(pruner={"name": "joint", "settings": {"hp_of": "x"}}),
                     ServiceHooks(None))


def test_parameters_out_of_the_zoo_space_are_named():
    with pytest.raises(ValueError, match="'arch' is 'transformer'"):
        hp_features("smnist", {"arch": "transformer"})
    with pytest.raises(ValueError, match="no 'p_lstm'"):
        hp_features("smnist", {"arch": "lstm"})
    with pytest.raises(ValueError, match="not 'flipflop'"):
        hp_features("flipflop", {})
