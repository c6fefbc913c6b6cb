"""The two tasks with a known answer: their data are what the docstrings say, a tiny network
learns, and bad parameters are named."""

import numpy as np
import pytest
import scipy.signal
import torch

from aelle.explain import linearise, network_of, pole_distance
from tasks import get
from tasks.flipflop import flipflop_data
from tasks.sysid import SysIdSettings, dataset, simulate, true_poles
from tests.tasks.conftest import PARAMS, TINY


def test_sysid_data_is_the_seed_system():
    from aelle.explain.linear_lstm import seed_system
    u = np.random.default_rng(0).standard_normal((2, 50, 1))
    y = simulate(u)
    a, b, c, d = seed_system()
    for k in range(2):
        _, ref, _ = scipy.signal.dlsim((a, b, c, d, 0.01), u[k])
        np.testing.assert_allclose(y[k], ref, atol=1e-10)
    (ut, yt), (_, yv) = dataset(SysIdSettings(seq_len=50, train_sequences=8, val_sequences=2))
    assert ut.shape == (8, 50, 1) and yv.shape == (2, 50, 1)
    assert yt.std() == pytest.approx(1.0, rel=1e-5)
    assert np.abs(true_poles()).max() == pytest.approx(0.9802, abs=1e-4)


def test_flipflop_targets_hold_the_last_pulse():
    u, y = flipflop_data(4, 60, 3, 0.1, np.random.default_rng(0))
    assert u.shape == y.shape == (4, 60, 3)
    assert set(np.unique(u)) <= {-1.0, 0.0, 1.0} and set(np.unique(y)) == {-1.0, 1.0}
    for b in range(4):
        for k in range(3):
            state = 0.0
            for t in range(60):
                state = u[b, t, k] if u[b, t, k] != 0 else state
                assert y[b, t, k] == state


@pytest.mark.parametrize("task", ["sysid", "flipflop"])
def test_a_few_epochs_lower_the_loss(task):
    t = get(task)
    settings = t.resolve(PARAMS[task], {**TINY[task], "epochs": 4})
    run = t.build(PARAMS[task], settings, seed=0, device=torch.device("cpu"))
    before = run.validate()
    for _ in range(30):  # one small batch an epoch: a few Adam steps are not enough
        run.train_epoch()
    assert run.validate() < before
    net = network_of(run.model)
    lin = linearise(net)
    assert lin.a.shape[0] == net.state_size


def test_linearised_untrained_sysid_network_is_far_from_the_true_poles():
    t = get("sysid")
    settings = t.resolve(PARAMS["sysid"], TINY["sysid"])
    run = t.build(PARAMS["sysid"], settings, seed=0, device=torch.device("cpu"))
    assert pole_distance(linearise(network_of(run.model)).poles, true_poles()) > 0.05


@pytest.mark.parametrize(("params", "message"), [
    ({"arch": "lem", "p": 0.3, "lr": 1e-2}, "unknown arch 'lem'"),
    ({"arch": "lstm", "p": -1.0, "lr": 1e-2}, "p must be positive"),
    ({"arch": "lstm", "p": 0.3}, "missing parameter 'lr'"),
])
@pytest.mark.parametrize("task", ["sysid", "flipflop"])
def test_bad_params_are_named(task, params, message):
    with pytest.raises(ValueError, match=message):
        get(task).resolve(params, TINY[task])


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="pulse_prob"):
        get("flipflop").settings({"pulse_prob": 1.5})
    with pytest.raises(ValueError, match="seq_len must be positive"):
        get("sysid").settings({"seq_len": 0})
