"""cell_for: torch's recurrent modules become cells that run the same map."""

import copy

import pytest
import torch
from torch import nn

from aelle import Cell, cell_for, lyapunov_spectrum
from aelle.cells.rnn import RNNCell


def _run_cell(cell, x):  # x (B, T, I) -> outputs (B, T, N)
    s = cell.zero_state(x.shape[0])
    outs = []
    for t in range(x.shape[1]):
        s = cell.step(s, x[None, :, t])
        outs.append(cell.output(s)[0])
    return torch.stack(outs, 1)


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_reproduces_the_torch_module(kind, batch_first, bias):
    torch.manual_seed(0)
    if kind.startswith("rnn"):
        module = nn.RNN(3, 5, num_layers=2, nonlinearity=kind[4:], batch_first=batch_first,
                        bias=bias)
    else:
        module = getattr(nn, kind.upper())(3, 5, num_layers=2, batch_first=batch_first,
                                           bias=bias)
    module = module.double()
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    expected, _ = module(x if batch_first else x.transpose(0, 1))
    expected = expected if batch_first else expected.transpose(0, 1)
    cell = cell_for(module)
    assert cell.n_networks == 1
    torch.testing.assert_close(_run_cell(cell, x), expected)


@pytest.mark.parametrize("module", [nn.RNNCell(3, 4), nn.LSTMCell(3, 4), nn.GRUCell(3, 4)])
def test_single_step_cells(module):
    module = module.double()
    x = torch.randn(2, 1, 3, dtype=torch.float64)
    out = module(x[:, 0])
    out = out[0] if isinstance(out, tuple) else out
    torch.testing.assert_close(_run_cell(cell_for(module), x)[:, 0], out)


def test_state_conventions_of_an_lstm():
    module = nn.LSTM(3, 6)
    assert cell_for(module, state="full").dim == 12
    assert cell_for(module, state="hidden").dim == 6
    res = lyapunov_spectrum(cell_for(module, state="hidden"), torch.randn(2, 20, 3), warmup=5)
    assert res.exponents.shape == (6,)


@pytest.mark.parametrize("module", [
    nn.LSTM(3, 5, num_layers=2), nn.GRU(3, 5, num_layers=2), nn.RNN(3, 5, num_layers=2),
    nn.RNN(3, 5, nonlinearity="relu"), nn.LSTMCell(3, 5), nn.GRUCell(3, 5), nn.RNNCell(3, 5),
], ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("state", ["full", "hidden"])
def test_a_float32_module_analysed_in_float64_is_the_float64_map(module, state):
    torch.manual_seed(0)
    for p in module.parameters():  # full mantissas, so that a float32 sum of two biases rounds
        torch.nn.init.normal_(p)
    cell = cell_for(module, state, dtype=torch.float64)
    wide = cell_for(copy.deepcopy(module).double(), state)
    assert cell.dtype == torch.float64 and type(cell) is type(wide)
    for (name, a), (_, b) in zip(_flat(cell).items(), _flat(wide).items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    g = torch.Generator().manual_seed(1)
    s = torch.randn(1, 4, cell.state_size, generator=g, dtype=torch.float64)
    x = torch.randn(1, 4, cell.input_size, generator=g, dtype=torch.float64)
    for got, want in zip(cell.jacobians(s, x, wrt_input=True), wide.jacobians(s, x, wrt_input=True),
                         strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    assert cell_for(module, state).dtype == torch.float32  # default: the module's own


@pytest.mark.parametrize("arch", ["lstm", "gru", "lipschitz", "noisy", "cornn"])
def test_a_task_layer_gives_its_float64_cell_exactly(arch):
    from tasks.models import recurrent

    layer = recurrent(arch, 3, 5, 0.5, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in layer.parameters():  # full mantissas, so that float32 sums and products round
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    cell = layer.lyapunov_cell("full", dtype=torch.float64)
    wide = copy.deepcopy(layer).double().lyapunov_cell("full")
    assert cell.dtype == torch.float64
    for (name, a), (_, b) in zip(_flat(cell).items(), _flat(wide).items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert layer.lyapunov_cell("full").dtype == torch.float32


def _flat(cell):
    layers = getattr(cell, "layers", (cell,))
    return {f"{i}.{n}": t for i, layer in enumerate(layers) for n, t in layer.tensors().items()}


def test_a_module_with_its_own_cell_is_converted_to_the_dtype_asked_for():
    class Custom(nn.Module):
        def lyapunov_cell(self, state="full"):
            return RNNCell(torch.ones(1, 2, 1), torch.eye(2)[None] * 0.5, torch.zeros(1, 2))

    assert cell_for(Custom(), dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match="dtype must be dtype"):
        cell_for(Custom(), dtype="float64")


def test_module_with_its_own_cell():
    class Custom(nn.Module):
        def lyapunov_cell(self, state="full"):
            return RNNCell(torch.ones(1, 2, 1), torch.eye(2)[None] * 0.5, torch.zeros(1, 2))

    assert isinstance(cell_for(Custom()), Cell)


@pytest.mark.parametrize(("module", "message"), [
    (nn.LSTM(3, 4, bidirectional=True), "bidirectional"),
    (nn.LSTM(3, 4, proj_size=2), "proj_size"),
    (nn.Linear(3, 4), "does not know Linear"),
])
def test_unsupported_modules_are_refused_clearly(module, message):
    with pytest.raises((TypeError, ValueError), match=message):
        cell_for(module)


def test_unknown_state_convention():
    with pytest.raises(ValueError, match="state must be"):
        cell_for(nn.GRU(2, 3), state="both")


def test_registry_names_every_architecture_and_refuses_unknown_ones():
    from aelle.cells import get, names

    assert names() == ["asrnn", "cornn", "force", "gru", "lem", "lipschitz", "lstm", "noisy",
                       "rnn"]
    with pytest.raises(KeyError, match="unknown architecture 'transformer'"):
        get("transformer")
    assert [name for name in names() if get(name).layerable] == ["gru", "lstm", "rnn"]


def test_stacking_refuses_mismatched_networks():
    from aelle import stack_cells
    from aelle.cells.gru import GRUCell

    with pytest.raises(ValueError, match="shapes differ"):
        stack_cells([GRUCell.random(2, 3), GRUCell.random(2, 4)])
    with pytest.raises(ValueError, match="cannot stack"):
        stack_cells([GRUCell.random(2, 3), RNNCell.random(2, 3)])
