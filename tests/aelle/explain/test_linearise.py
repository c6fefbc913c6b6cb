"""Linearisation: seed 002's LSTM realisation of a known system gives back its poles and gains;
the Jacobians used agree with autograd for every registered architecture."""

import numpy as np
import pytest
import torch

from aelle.cells import names
from aelle.explain import Network, linearise, lstm_realising, operating_point, pole_distance
from aelle.explain.jacobians import autograd_jacobians, state_input_jacobians
from aelle.explain.linear_lstm import seed_system
from tests.aelle.conftest import random_cell


def _net(cell, outputs=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(outputs, cell.hidden_size, generator=g, dtype=torch.float64)
    return Network(cell, w, torch.zeros(outputs, dtype=torch.float64))


def test_seed_system_matches_the_seed():
    a, b, c, d = seed_system()
    assert np.abs(np.linalg.eigvals(a)).max() < 1
    gain = c @ np.linalg.solve(np.eye(4) - a, b) + d
    assert gain[0, 0] == pytest.approx(7.5351, abs=1e-4)
    # the seed's denominator (z^2 - 1.826z + 0.8353)(z^2 - 1.72z + 0.9608)
    np.testing.assert_allclose(np.poly(np.linalg.eigvals(a)).real,
                               np.polymul([1, -1.826, 0.8353], [1, -1.72, 0.9608]), atol=1e-3)


@pytest.mark.parametrize("u", [0.0, 0.7, -1.5])
def test_lstm_built_for_a_linear_system_recovers_its_poles(u):
    a, b, c, d = seed_system()
    net = lstm_realising(a, b, c, d)
    point = operating_point(net, torch.tensor([u]))
    lin = linearise(net, point)
    assert lin.a.shape == (10, 10)  # N = 5 units, (h, c)
    assert pole_distance(lin.poles, np.linalg.eigvals(a)) < 1e-3
    assert lin.dc_gain[0, 0] == pytest.approx(7.5351, rel=1e-3)
    assert abs(lin.d[0, 0]) < 1e-3


def test_zeros_at_the_origin_are_the_seeds():
    a, b, c, d = seed_system()
    finite = linearise(lstm_realising(a, b, c, d)).zeros[0][0]
    for z in (-3.517, -0.2599, 0.9608):  # the seed's zeros, to its printed precision
        assert np.abs(finite - z).min() < 1e-2


def test_linearised_response_matches_the_network_for_small_inputs():
    a, b, c, d = seed_system()
    net = lstm_realising(a, b, c, d)
    lin = linearise(net)
    u = torch.randn(1, 60, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y_net = net.readout(net.run(u))[0, :, 0].numpy()
    x, y_lin = np.zeros(lin.a.shape[0]), []
    for t in range(60):
        y_lin.append((lin.c @ x + lin.d @ u[0, t].numpy())[0])
        x = lin.a @ x + lin.b @ u[0, t].numpy()
    np.testing.assert_allclose(y_net, y_lin, atol=1e-3 * np.abs(y_lin).max())


def test_frequency_response_at_zero_is_the_steady_state_gain():
    a, b, c, d = seed_system()
    lin = linearise(lstm_realising(a, b, c, d))
    w, h = lin.frequency_response(16)
    assert w[0] == 0 and h.shape == (16, 1, 1)
    assert h[0, 0, 0].real == pytest.approx(lin.dc_gain[0, 0], rel=1e-9)


@pytest.mark.parametrize("name", names())
def test_every_architecture_linearises_with_autograd_jacobians(name):
    cell = random_cell(name, n_networks=1)
    net = _net(cell)
    g = torch.Generator().manual_seed(2)
    s = 0.3 * torch.randn(3, cell.state_size, generator=g, dtype=torch.float64)
    u = torch.randn(3, cell.input_size, generator=g, dtype=torch.float64)
    for x, y in zip(state_input_jacobians(net, s, u), autograd_jacobians(net, s, u), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-11)
    lin = linearise(net, operating_point(net, steps=50))
    assert lin.a.shape == (cell.state_size, cell.state_size)
    assert lin.c.shape == (2, cell.state_size) and lin.d.shape == (2, cell.input_size)
    assert np.isfinite(lin.poles).all()


def test_bad_operating_point_is_refused():
    net = _net(random_cell("rnn", n_networks=1))
    with pytest.raises(ValueError, match="u must have 3 values"):
        operating_point(net, torch.zeros(2))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        operating_point(net, steps=0)


def test_network_refuses_stacked_cells_and_wrong_readouts():
    cell = random_cell("gru", n_networks=2)
    with pytest.raises(ValueError, match="one network at a time"):
        Network(cell, torch.zeros(1, 5, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    with pytest.raises(ValueError, match="readout_weight must be"):
        Network(random_cell("gru", n_networks=1), torch.zeros(1, 4, dtype=torch.float64),
                torch.zeros(1, dtype=torch.float64))


def test_a_cell_without_analytic_jacobians_linearises_by_autograd():
    import dataclasses

    from aelle.cells.base import Cell

    @dataclasses.dataclass(frozen=True)
    class StepOnly(Cell):  # s' = tanh(W s + U x): no jacobians of its own
        weight_hh: torch.Tensor
        weight_ih: torch.Tensor

        @property
        def hidden_size(self):
            return self.weight_hh.shape[-1]

        def step(self, s, x):
            return torch.tanh(s @ self.weight_hh.mT + x @ self.weight_ih.mT)

    w = torch.tensor([[[0.5, 0.2], [-0.3, 0.4]]], dtype=torch.float64)
    u = torch.tensor([[[1.0], [2.0]]], dtype=torch.float64)
    net = Network(StepOnly(w, u), torch.tensor([[1.0, 0.0]], dtype=torch.float64),
                  torch.zeros(1, dtype=torch.float64))
    lin = linearise(net)  # at the origin tanh' = 1: A = W, B = U, C = e_0 W, D = e_0 U
    np.testing.assert_allclose(lin.a, w[0].numpy(), atol=1e-15)
    np.testing.assert_allclose(lin.b, u[0].numpy(), atol=1e-15)
    np.testing.assert_allclose(lin.d, [[1.0]], atol=1e-15)
    np.testing.assert_allclose(np.sort_complex(lin.poles), np.sort_complex(np.linalg.eigvals(w[0])))
