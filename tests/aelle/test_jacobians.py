"""Every registered analytic Jacobian equals torch.func.jacrev in float64."""

import pytest
import torch

from tests.aelle.conftest import cases, random_cell
from tests.aelle.reference import autograd_jacobians

RTOL, ATOL = 1e-10, 1e-12


@pytest.mark.parametrize(("name", "layers", "kw"), cases(),
                         ids=lambda v: str(v) if not isinstance(v, dict) else
                         ",".join(f"{a}={b}" for a, b in v.items()) or "default")
def test_analytic_jacobian_matches_autograd(name, layers, kw):
    cell = random_cell(name, layers=layers, **kw)
    g = torch.Generator().manual_seed(1)
    m, b = cell.n_networks, 4
    s = torch.randn(m, b, cell.state_size, generator=g, dtype=torch.float64)
    x = torch.randn(1, b, cell.input_size, generator=g, dtype=torch.float64)
    s_new, j, jx = cell.jacobians(s, x, wrt_input=True)
    j_ref, jx_ref = autograd_jacobians(cell, s, x)
    assert j.shape == (m, b, cell.dim, cell.dim)
    torch.testing.assert_close(s_new, cell.step(s, x), rtol=0, atol=0)
    torch.testing.assert_close(j, j_ref, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(jx, jx_ref, rtol=RTOL, atol=ATOL)


def test_layered_jacobian_is_block_lower_triangular():
    cell = random_cell("lstm", layers=3, state="full")
    s = torch.randn(2, 3, cell.state_size, dtype=torch.float64)
    x = torch.randn(1, 3, cell.input_size, dtype=torch.float64)
    _, j, _ = cell.jacobians(s, x)
    d = cell.layers[0].dim
    assert torch.count_nonzero(j[..., :d, d:]) == 0
    assert torch.count_nonzero(j[..., d:, :d]) > 0
