"""Fixed points and the attractor graph on maps whose answer is known in closed form."""

import numpy as np
import pytest
import scipy.optimize
import torch

from aelle.cells.rnn import RNNCell
from aelle.explain import Network, attractor_graph, fixed_points

T = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731


def _bistable(w=2.0):
    """h' = tanh(w h + u): for w > 1 two stable points +-h*, h* = tanh(w h*), and 0 unstable."""
    return Network(RNNCell(T([[[1.0]]]), T([[[w]]]), T([[0.0]])), T([[1.0]]), T([0.0]))


def _two_bit():
    """Two uncoupled bistable units: four stable points, and one pulse per bit flips it."""
    cell = RNNCell(T([[[1.0, 0.0], [0.0, 1.0]]]), T([[[2.0, 0.0], [0.0, 3.0]]]), T([[0.0, 0.0]]))
    return Network(cell, T(np.eye(2)), T([0.0, 0.0]))


def test_two_attractor_map_fixed_points_are_exact():
    h_star = scipy.optimize.brentq(lambda h: np.tanh(2 * h) - h, 0.5, 1.5, xtol=1e-15)
    pts = fixed_points(_bistable(), torch.linspace(-2, 2, 41)[:, None], include_unstable=True)
    stable = sorted(float(p.state[0]) for p in pts if p.kind == "stable")
    assert stable == pytest.approx([-h_star, h_star], abs=1e-12)
    unstable = [p for p in pts if p.kind == "unstable"]
    assert len(unstable) == 1 and abs(unstable[0].state[0]) < 1e-12
    for p in pts:
        assert p.residual < 1e-12
        expected = 2 * (1 - np.tanh(2 * p.state[0]) ** 2)
        assert abs(p.eigenvalues[0]) == pytest.approx(expected, rel=1e-10)


def test_iteration_alone_finds_only_the_stable_points():
    pts = fixed_points(_bistable(), torch.linspace(-2, 2, 40)[:, None])
    assert [p.kind for p in pts] == ["stable", "stable"]
    assert sum(p.hits for p in pts) == 40


def test_transitions_need_the_threshold_amplitude():
    net = _bistable()
    h_star = scipy.optimize.brentq(lambda h: np.tanh(2 * h) - h, 0.5, 1.5)
    amps = [0.5, 1.0, 1.9, 1.95, 3.0, -0.5, -1.0, -1.9, -1.95, -3.0]
    g = attractor_graph(net, torch.linspace(-2, 2, 21)[:, None], amps)
    assert len(g.stable) == 2
    # one pulse u flips -h* to the other side iff -2 h* + u > 0, u > 2 h* = 1.915
    edges = {(g.points[t.source].state[0] > 0, g.points[t.target].state[0] > 0): t.amplitude
             for t in g.transitions}
    assert 2 * h_star == pytest.approx(1.915, abs=1e-3)
    assert edges == {(False, True): 1.95, (True, False): -1.95}


def test_two_bit_memory_has_four_attractors_and_bit_flips():
    g = attractor_graph(_two_bit(), torch.cartesian_prod(*[torch.linspace(-1, 1, 5)] * 2),
                        [-4.0, 4.0])
    assert len(g.stable) == 4
    signs = [tuple(np.sign(g.points[i].state).astype(int)) for i in g.stable]
    assert sorted(signs) == [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    assert len(g.transitions) == 8  # from each point: flip either bit
    for t in g.transitions:
        a, b = np.sign(g.points[t.source].state), np.sign(g.points[t.target].state)
        assert (a != b).tolist() == [t.channel == 0, t.channel == 1]


def test_bad_starts_and_channels_are_named():
    with pytest.raises(ValueError, match=r"starts must be \(K >= 1, 1\)"):
        fixed_points(_bistable(), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="channels"):
        attractor_graph(_bistable(), torch.zeros(3, 1), [1.0], channels=[3])
    with pytest.raises(ValueError, match="amplitudes"):
        attractor_graph(_bistable(), torch.zeros(3, 1), [])
