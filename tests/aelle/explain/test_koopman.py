"""KANN: on a linear RNN the Koopman matrix has the RNN's eigenvalues, and predicts exactly."""

import numpy as np
import pytest
import torch

from aelle.cells.rnn import RNNCell
from aelle.explain import Network, koopman, koopman_states, memory_horizon
from aelle.explain.koopman import koopman_free_run
from tests.aelle.conftest import random_cell


def _linear_rnn(n=6, radius=0.95, seed=0):
    """A random W scaled to spectral radius ``radius``."""
    g = np.random.default_rng(seed)
    w = g.normal(size=(n, n))
    return radius * w / np.abs(np.linalg.eigvals(w)).max()


def test_recovers_the_eigenvalues_of_a_linear_rnn():
    w = _linear_rnn()
    g = np.random.default_rng(1)
    h = [g.normal(size=(16, 6))]
    for _ in range(40):
        h.append(h[-1] @ w.T)
    res = koopman_states(np.stack(h, 1))
    np.testing.assert_allclose(np.sort_complex(res.eigenvalues),
                               np.sort_complex(np.linalg.eigvals(w)), atol=1e-9)
    assert res.relative_error < 1e-20
    tau = res.memory_horizons
    np.testing.assert_allclose(tau, np.log(1e-2) / np.log(np.abs(res.eigenvalues)))
    assert tau[0] == pytest.approx(np.log(1e-2) / np.log(0.95))


def test_network_koopman_on_an_almost_linear_tanh_rnn():
    w = _linear_rnn(n=5, radius=0.9)
    t = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
    net = Network(RNNCell(t(np.zeros((1, 5, 1))), t(w[None]), t(np.zeros((1, 5)))),
                  t(np.eye(5)[:2]), t(np.zeros(2)))
    # drive with no input from small random states: tanh(x) = x to 1e-9 relative
    g = torch.Generator().manual_seed(0)
    h0 = 1e-4 * torch.randn(32, 5, generator=g, dtype=torch.float64)
    states = net.run(torch.zeros(32, 30, 1, dtype=torch.float64), h0)
    res = koopman_states(states)
    np.testing.assert_allclose(np.sort_complex(res.eigenvalues),
                               np.sort_complex(np.linalg.eigvals(w)), atol=1e-6)
    free = koopman_free_run(res, h0.numpy(), 30)
    np.testing.assert_allclose(free, states.numpy(), atol=1e-10)


def test_trained_like_network_reports_errors_in_range():
    net_cell = random_cell("gru", n_networks=1, input_size=2, hidden=8)
    net = Network(net_cell, torch.randn(3, 8, dtype=torch.float64),
                  torch.zeros(3, dtype=torch.float64))
    probe = torch.randn(8, 40, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    res = koopman(net, probe, warmup=5, rank=4)
    assert res.matrix.shape == (4, 4) and res.modes.shape == (8, 4)
    assert res.relative_error >= 0 and 0 <= res.accuracy_error <= 1 and res.output_error >= 0
    assert res.to_dict()["rank"] == 4


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="epsilon"):
        memory_horizon(np.array([0.5]), 1.5)
    with pytest.raises(ValueError, match=r"rank must lie in 1\.\.3"):
        koopman_states(np.ones((2, 5, 3)), rank=4)
    with pytest.raises(ValueError, match="steps >= 2"):
        koopman_states(np.ones((2, 1, 3)))
    assert memory_horizon(np.array([1.0, 0.5]))[0] == np.inf


def test_sign_decisions_count_flipped_outputs():
    h = np.zeros((1, 3, 2))
    h[0, :, 0] = [1.0, -1.0, 1.0]   # an oscillation the one-step fit cannot fully follow
    h[0, :, 1] = [1.0, 1.0, 1.0]
    res = koopman_states(h, rank=1, readout=lambda z: z, decision="sign")
    assert res.accuracy_error is not None and 0 < res.accuracy_error <= 1
    with pytest.raises(ValueError, match="decision must be one of"):
        koopman_states(h, decision="vote")
