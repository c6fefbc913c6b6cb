"""Response characterisation: a unit with a known time constant settles when the analysis says;
ranking and ablation behave; non-LSTM networks are refused by name."""

import math

import numpy as np
import pytest
import torch

from aelle.cells.lstm import LSTMCell
from aelle.explain import Network, ablate, ablation, responses
from aelle.explain.responses import settling_time, unit_cell
from tests.aelle.conftest import random_cell

T = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731


def _leaky_units(forgets, gains):
    """Units with c_t = f c_{t-1} + g x_t (input and output gates open, no recurrence): a
    first-order system of time constant -1/log f; h = tanh(c) is c to 1e-7 at these gains."""
    n = len(forgets)
    logit = [math.log(f / (1 - f)) for f in forgets]
    w_ih = np.zeros((4 * n, 1))
    w_ih[2 * n:3 * n, 0] = gains
    bias = np.concatenate([30 * np.ones(n), logit, np.zeros(n), 30 * np.ones(n)])
    cell = LSTMCell(T(w_ih[None]), T(np.zeros((1, 4 * n, n))), T(bias[None]))
    return Network(cell, T(np.ones((1, n))), T([0.0]))


@pytest.mark.parametrize("f", [0.5, 0.8, 0.93, 0.97])
def test_settling_time_of_a_first_order_unit_is_analytic(f):
    r = responses(_leaky_units([f], [1e-5]), steps=2000)
    tau = -1 / math.log(f)
    assert r.units[0].settling_time == math.ceil(tau * math.log(10))
    assert r.units[0].final == pytest.approx(1e-5 / (1 - f), rel=1e-6)
    assert r.units[0].initial == 0.0


def test_sine_metrics_and_ranking():
    r = responses(_leaky_units([0.5, 0.9], [1e-3, -2e-3]), steps=400, frequency=0.05)
    assert [u.frequency for u in r.units] == [0.05, 0.05]
    assert r.units[0].pearson > 0.5 and r.units[1].pearson < 0
    assert r.units[1].correlation < 0 < r.units[0].correlation
    # |delta| = g / (1 - f): unit 1 (0.02) before unit 0 (0.002)
    assert r.ranking("delta").tolist() == [1, 0]
    with pytest.raises(ValueError, match="unknown metric"):
        r.metric("speed")


def test_settling_time_definition():
    y = np.array([0, 0, 0.5, 1.2, 0.95, 1.0, 1.0])
    assert settling_time(y, 2) == 3  # within 0.1 of 1.0 from index 4 on
    assert settling_time(np.zeros(6), 3) == -1


def test_unit_cell_is_the_decoupled_unit():
    cell = random_cell("lstm", n_networks=1)
    one = unit_cell(cell, 2)
    assert one.hidden_size == 1 and one.input_size == cell.input_size
    assert float(one.weight_hh[0, 1, 0]) == float(cell.weight_hh[0, 5 + 2, 2])


def test_methods_that_need_a_gated_cell_say_so():
    net = Network(random_cell("gru", n_networks=1), torch.zeros(1, 5, dtype=torch.float64),
                  torch.zeros(1, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"decouples single LSTM units.*GRUCell"):
        responses(net)


def test_ablation_silences_units():
    net = _leaky_units([0.5, 0.9, 0.7], [1e-3, 1e-3, 1e-3])
    x = torch.ones(1, 50, 1, dtype=torch.float64)
    full = net.readout(net.run(x))
    cut = ablate(net, [1])
    out = cut.readout(cut.run(x))
    h = net.cell.output(net.run(x))
    torch.testing.assert_close(out, full - h[..., [1]])

    def loss(n):
        return float((n.readout(n.run(x)) - full).pow(2).mean())

    res = ablation(net, [1, 2, 0], loss, counts=[1, 3], draws=5)
    assert res.baseline == 0.0 and res.ranked[1] == pytest.approx(float(full.pow(2).mean()))
    with pytest.raises(ValueError, match="out of range"):
        ablate(net, [3])
