"""Search spaces, parameter and settings validation."""

import optuna
import pytest
from optuna.distributions import FloatDistribution

from tasks import get, run_trial
from tasks.smnist import P_RANGES
from tests.tasks.conftest import TINY


def test_smnist_space_has_the_dissertation_ranges_and_suggests_conditionally():
    task = get("smnist")
    space = task.search_space()
    assert space["p_asrnn"] == FloatDistribution(0.1, 50.0)
    assert space["p_lstm"] == FloatDistribution(0.1, 3.0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        params = task.suggest(study.ask(), space)
        assert set(params) == {"arch", f"p_{params['arch']}"}
        lo, hi = P_RANGES[params["arch"]]
        assert lo <= params[f"p_{params['arch']}"] <= hi
        seen.add(params["arch"])
    assert len(seen) >= 6


def test_charrnn_and_signal_spaces():
    char = get("charrnn").search_space()
    assert char["hidden"].choices == (64, 128, 256, 512)
    assert (char["p"].low, char["p"].high) == (0.04, 0.40)
    sig = get("signal").search_space()
    assert (sig["g"].low, sig["g"].high) == (1.0, 2.0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params = get("signal").suggest(study.ask())
    assert set(params) == {"g", "connectivity"}


def test_dissertation_sizes_are_the_defaults():
    assert get("signal").settings().hidden == 512
    assert get("signal").settings().epochs == 15
    assert get("smnist").settings().hidden == 64
    assert get("charrnn").settings().seq_len == 100


@pytest.mark.parametrize(("params", "message"), [
    ({"arch": "transformer", "p_transformer": 1.0}, "unknown parameter"),
    ({"arch": "transformer"}, "unknown arch 'transformer'"),
    ({"arch": "gru"}, "missing parameter 'p_gru'"),
    ({"arch": "gru", "p_gru": "big"}, "p_gru must be int or float"),
    ({"arch": "gru", "p_gru": float("nan")}, "must be finite"),
])
def test_bad_smnist_params_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        run_trial("smnist", params, TINY["smnist"])


@pytest.mark.parametrize(("settings", "message"), [
    ({"epochs": 0}, "epochs must be positive"),
    ({"epochs": "3"}, "epochs must be int"),
    ({"lr": True}, "lr must be float"),
    ({"batch": 3}, "unknown setting"),
    ({"spectrum_state": "both"}, "spectrum_state must be"),
    ({"device": "tpu"}, "device must be"),
])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        run_trial("smnist", {"arch": "gru", "p_gru": 0.5}, {**TINY["smnist"], **settings})


def test_a_parameter_may_override_a_setting():
    params = {"arch": "gru", "p_gru": 0.5, "lr": 0.05}
    settings = get("smnist").resolve(params, TINY["smnist"])
    assert settings.lr == 0.05


def test_bad_charrnn_and_signal_params():
    with pytest.raises(ValueError, match="dropout must be in"):
        run_trial("charrnn", {"hidden": 8, "p": 0.1, "lr": 1e-3, "dropout": 1.5}, TINY["charrnn"])
    with pytest.raises(ValueError, match="connectivity must be int"):
        run_trial("signal", {"g": 1.4, "connectivity": 1.5}, TINY["signal"])
    with pytest.raises(ValueError, match="seed must be"):
        run_trial("signal", {"g": 1.4, "connectivity": 1}, TINY["signal"], seed=-1)
