"""The Lyapunov views: alignment of the vectors with the readout, FTLE, spectra across epochs."""

import numpy as np
import pytest
import torch

from aelle.cells.rnn import RNNCell
from aelle.explain import Network, lyapunov_views, spectra_across_epochs

T = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731


def test_diagonal_linear_map_views():
    # h' = tanh(diag(0.9, 0.5) h) from h0 = 0: the exponents are log 0.9, log 0.5, and the
    # Lyapunov vectors the axes; a readout along axis 0 aligns with the first only
    cell = RNNCell(T([[[0.0], [0.0]]]), T([[[0.9, 0.0], [0.0, 0.5]]]), T([[0.0, 0.0]]))
    net = Network(cell, T([[1.0, 0.0]]), T([0.0]))
    v = lyapunov_views(net, torch.zeros(2, 30, 1), epochs=[1, 2], spectra=[[0.1, -1.0], [0.2]])
    np.testing.assert_allclose(v.exponents, np.log([0.9, 0.5]), atol=1e-12)
    np.testing.assert_allclose(v.alignment, [[1.0, 0.0]], atol=1e-12)
    assert v.ftle.shape == (30, 2)
    np.testing.assert_allclose(v.ftle[-1], np.log([0.9, 0.5]), atol=1e-12)
    assert np.isnan(v.across_epochs[1, 1]) and v.to_dict()["across_epochs"][1][1] is None


def test_mismatched_epochs_are_refused():
    cell = RNNCell(T([[[0.0]]]), T([[[0.5]]]), T([[0.0]]))
    with pytest.raises(ValueError, match="2 epochs but 1 spectra"):
        lyapunov_views(Network(cell, T([[1.0]]), T([0.0])), torch.zeros(1, 5, 1),
                       epochs=[1, 2], spectra=[[0.0]])
    assert spectra_across_epochs([]).shape == (0, 0)
