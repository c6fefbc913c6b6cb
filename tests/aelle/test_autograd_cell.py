"""The generic cell: any step, Jacobians by torch.func, through the same engine.

Built from each registered architecture's own step it must be that architecture (Jacobians to
1e-12, spectra to 1e-10 in float64); built from a user's module or function it must give the
Jacobians of an independent autograd and finite differences, and a known answer.
"""

import copy
import dataclasses

import pytest
import torch
from torch import nn

from aelle import StepCell, cell_for, lyapunov_spectrum, stack_cells
from aelle.cells import get, names
from aelle.cells.base import TwoStateCell
from aelle.cells.layered import LayeredCell
from tests.aelle.conftest import random_cell
from tests.aelle.reference import autograd_jacobians, autograd_spectrum
from tests.gpu.conftest import gpu

JAC_ATOL, SPECTRUM_ATOL = 1e-12, 1e-10


def own_step(template):
    """An analytic cell's own map as a plain step of one sequence and one network."""

    def step(s, x, **tensors):
        one = dataclasses.replace(template, **{k: v[None] for k, v in tensors.items()})
        return one.step(s[None, None], x[None, None])[0, 0]

    return step


def generic(cell, jacobian="reverse"):
    """The StepCell of an analytic cell's own step, its M networks stacked."""
    step = own_step(cell)
    state = getattr(cell, "state", "full")
    per_net = [StepCell.from_function(step, state_size=cell.state_size,
                                      input_size=cell.input_size, hidden_size=cell.hidden_size,
                                      params={k: v[i] for k, v in cell.tensors().items()},
                                      state=state, jacobian=jacobian)
               for i in range(cell.n_networks)]
    return stack_cells(per_net)


def single_layer_cases():
    out = []
    for name in names():
        kws = [{}] if name != "rnn" else [{"nonlinearity": "tanh"}, {"nonlinearity": "relu"}]
        states = ("full", "hidden") if issubclass(get(name), TwoStateCell) else (None,)
        out += [dict(kw, **({"state": st} if st else {})) | {"name": name}
                for kw in kws for st in states]
    return out


CASES = single_layer_cases()
IDS = ["-".join(str(v) for v in c.values()) for c in CASES]


def states_and_inputs(cell, b=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(cell.n_networks, b, cell.state_size, generator=g, dtype=torch.float64)
    x = torch.randn(1, b, cell.input_size, generator=g, dtype=torch.float64)
    return s, x


def probe(cell, batch=3, steps=20, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, steps, cell.input_size, generator=g, dtype=torch.float64)


def test_every_registered_architecture_is_covered():
    assert sorted({c["name"] for c in CASES}) == names()


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("jacobian", ["reverse", "forward"])
def test_own_step_gives_the_analytic_jacobians(case, jacobian):
    kw = {k: v for k, v in case.items() if k != "name"}
    cell = random_cell(case["name"], **kw)
    auto = generic(cell, jacobian)
    assert (auto.dim, auto.state_size, auto.hidden_size) == (cell.dim, cell.state_size,
                                                             cell.hidden_size)
    s, x = states_and_inputs(cell)
    with torch.no_grad():  # as the engine calls it
        got = auto.jacobians(s, x, wrt_input=True)
    want = cell.jacobians(s, x, wrt_input=True)
    for g, w, what in zip(got, want, ("state", "J", "Jx"), strict=True):
        assert g.shape == w.shape, what
        torch.testing.assert_close(g, w, rtol=0, atol=JAC_ATOL, msg=what)
    torch.testing.assert_close(auto.step(s, x), cell.step(s, x), rtol=0, atol=JAC_ATOL)
    assert auto.jacobians(s, x)[2] is None


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_own_step_gives_the_analytic_spectrum(case):
    kw = {k: v for k, v in case.items() if k != "name"}
    cell = random_cell(case["name"], **kw)
    x = probe(cell)
    want = lyapunov_spectrum(cell, x, warmup=5, dtype=torch.float64)
    got = lyapunov_spectrum(generic(cell), x, warmup=5, dtype=torch.float64)
    assert got.exponents.shape == want.exponents.shape == (2, cell.dim)
    torch.testing.assert_close(got.exponents, want.exponents, rtol=0, atol=SPECTRUM_ATOL)
    torch.testing.assert_close(got.per_sequence, want.per_sequence, rtol=0, atol=SPECTRUM_ATOL)


@pytest.mark.parametrize("name", ["lstm", "cornn", "force"])
def test_from_cell_is_the_stacked_generic_cell(name):
    cell = random_cell(name)
    auto = StepCell.from_cell(cell)
    assert (auto.name, auto.n_networks, auto.dim) == (name, 2, cell.dim)
    s, x = states_and_inputs(cell)
    for got, want in zip(auto.jacobians(s, x, True), generic(cell).jacobians(s, x, True),
                         strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    with pytest.raises(ValueError, match="build the generic cell of each layer"):
        StepCell.from_cell(random_cell("gru", layers=2))


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_layers_of_generic_cells_give_the_layered_spectrum(name):
    analytic = random_cell(name, layers=2, n_networks=1)
    layered = LayeredCell(tuple(generic(layer) for layer in analytic.layers))
    assert not layered.thread_safe
    x = probe(analytic)
    want = lyapunov_spectrum(analytic, x, warmup=5, dtype=torch.float64).exponents
    got = lyapunov_spectrum(layered, x, warmup=5, dtype=torch.float64).exponents
    torch.testing.assert_close(got, want, rtol=0, atol=SPECTRUM_ATOL)


# ---- a user's own cell ---------------------------------------------------------------------

class MinimalGated(nn.Module):
    """The minimal gated unit (Zhou et al. 2016), in no registry: one forget gate f,
    h' = (1 - f) h + f tanh(W_h (f h) + U_h x + b_h), f = sigmoid(W_f h + U_f x + b_f)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.aelle_state_size = input_size, hidden_size
        self.w = nn.Linear(hidden_size, 2 * hidden_size, bias=False)
        self.u = nn.Linear(input_size, 2 * hidden_size)

    def aelle_step(self, h, x):
        wf, wh = self.w.weight.chunk(2)
        af, ah = self.u(x).chunk(2, dim=-1)
        f = torch.sigmoid(h @ wf.T + af)
        return (1 - f) * h + f * torch.tanh((f * h) @ wh.T + ah)


class SkipTanh(nn.Module):
    """A tanh cell with a skip term and a slow trace m of its output: state (h, m),
    h' = tanh(W h + U x + b + c m) + alpha h, m' = (1 - rho) m + rho h'."""

    def __init__(self, input_size, hidden_size, alpha=0.5, rho=0.2):
        super().__init__()
        n = hidden_size
        self.aelle_input_size, self.aelle_state_size, self.aelle_hidden_size = input_size, 2 * n, n
        self.w = nn.Parameter(torch.randn(n, n) / n ** 0.5)
        self.u = nn.Parameter(torch.randn(n, input_size))
        self.b, self.b_extra = nn.Parameter(torch.randn(n)), nn.Parameter(torch.randn(n))
        self.c = nn.Parameter(torch.randn(n))
        self.register_buffer("alpha", torch.tensor(alpha))
        self.register_buffer("steps", torch.tensor(0))  # an integer buffer the step ignores
        self.rho = rho

    def aelle_step(self, s, x):
        n = self.aelle_hidden_size
        h, m = s[..., :n], s[..., n:]
        h_new = torch.tanh(h @ self.w.T + x @ self.u.T + (self.b + self.b_extra) + self.c * m) \
            + self.alpha * h
        return torch.cat([h_new, (1 - self.rho) * m + self.rho * h_new], -1)


def _user_modules():
    torch.manual_seed(0)
    return [MinimalGated(3, 5).double(), SkipTanh(3, 4).double()]


@pytest.mark.parametrize("module", _user_modules(), ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("state", ["full", "hidden"])
def test_a_declared_step_gets_the_jacobian_of_an_independent_autograd(module, state):
    cell = cell_for(module, state)
    assert isinstance(cell, StepCell) and cell.name == f"step:{type(module).__name__}"
    n = module.aelle_state_size if state == "full" else getattr(module, "aelle_hidden_size",
                                                                 module.aelle_state_size)
    assert cell.dim == n
    s, x = states_and_inputs(cell, b=3)
    with torch.no_grad():
        s_new, j, jx = cell.jacobians(s, x, wrt_input=True)
    for b in range(3):
        s_b, x_b = s[0, b], x[0, b]

        def f(v, s_b=s_b, x_b=x_b):  # the module's own step, its own parameters
            return module.aelle_step(torch.cat([v, s_b[n:]]), x_b)[:n]

        j_ref = torch.autograd.functional.jacobian(f, s_b[:n])
        jx_ref = torch.autograd.functional.jacobian(
            lambda xx, s_b=s_b: module.aelle_step(s_b, xx)[:n], x_b)
        torch.testing.assert_close(j[0, b], j_ref, rtol=0, atol=JAC_ATOL)
        torch.testing.assert_close(jx[0, b], jx_ref, rtol=0, atol=JAC_ATOL)
        # the batched step against one sample's: the same up to rounding (the kernels differ)
        torch.testing.assert_close(s_new[0, b], module.aelle_step(s_b, x_b), rtol=0,
                                   atol=JAC_ATOL)
        # and central finite differences, which know nothing of autograd
        eps = 1e-6
        fd = torch.stack([(f(s_b[:n] + eps * e) - f(s_b[:n] - eps * e)) / (2 * eps)
                          for e in torch.eye(n, dtype=torch.float64)], -1)
        torch.testing.assert_close(j[0, b].detach(), fd.detach(), rtol=0, atol=1e-8)


@pytest.mark.parametrize("module", _user_modules(), ids=lambda m: type(m).__name__)
def test_a_declared_step_gets_its_spectrum(module):
    cell = cell_for(module)
    x = probe(cell)
    res = lyapunov_spectrum(cell, x, warmup=5, dtype=torch.float64)
    assert res.exponents.shape == (module.aelle_state_size,)
    assert torch.isfinite(res.exponents).all()
    ref = autograd_spectrum(cell, x, warmup=5)  # per sequence, jacrev, plain QR
    torch.testing.assert_close(res.per_sequence, ref, rtol=0, atol=SPECTRUM_ATOL)
    # the sum of the exponents is the time mean of log|det J|, a check independent of QR
    with torch.no_grad():
        s, logdet = cell.zero_state(x.shape[0]), 0.0
        for t in range(x.shape[1]):
            s, j, _ = cell.jacobians(s, x[None, :, t])
            if t >= 5:
                logdet = logdet + torch.linalg.slogdet(j[0]).logabsdet
    torch.testing.assert_close(res.per_sequence.sum(-1), logdet / (x.shape[1] - 5),
                               rtol=0, atol=1e-9)


def test_a_float32_module_analysed_in_float64_is_the_float64_map():
    torch.manual_seed(3)
    module = SkipTanh(3, 4)  # float32; its step sums two biases
    cell = cell_for(module, dtype=torch.float64)
    wide = cell_for(copy.deepcopy(module).double())
    assert cell.dtype == torch.float64 and cell_for(module).dtype == torch.float32
    for name, t in wide.params.items():
        torch.testing.assert_close(cell.params[name], t, rtol=0, atol=0, msg=name)
    assert cell.params["steps"].dtype == torch.int64  # integer buffers keep their dtype
    assert cell.to(torch.float32).params["steps"].dtype == torch.int64
    s, x = states_and_inputs(cell)
    for got, want in zip(cell.jacobians(s, x, True), wide.jacobians(s, x, True), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert module.w.dtype == torch.float32  # the module itself is left alone


def test_the_cell_is_a_snapshot_of_the_module():
    module = MinimalGated(2, 3).double()
    cell = cell_for(module)
    s, x = states_and_inputs(cell)
    before = cell.step(s, x)
    with torch.no_grad():
        module.w.weight.mul_(3.0)
    torch.testing.assert_close(cell.step(s, x), before, rtol=0, atol=0)
    assert not torch.allclose(cell_for(module).step(s, x), before)


def test_a_plain_step_function_with_a_known_spectrum():
    d = torch.tensor([-2.0, 1.0, 0.5, 0.1], dtype=torch.float64)  # Q stays I: in this order

    def diagonal(s, x, d, u):  # s' = diag(d) s + u x: exponents log|d_i|
        return d * s + u @ x

    cell = cell_for(diagonal, state_size=4, input_size=2,
                    params={"d": d, "u": torch.ones(4, 2, dtype=torch.float64)})
    res = lyapunov_spectrum(cell, torch.randn(2, 20, 2, dtype=torch.float64), warmup=3,
                            dtype=torch.float64)
    torch.testing.assert_close(res.exponents, d.abs().log(), rtol=0, atol=1e-12)


def test_a_function_without_parameters_and_its_hidden_convention():
    def leaky(s, x):  # (h, m): h' = tanh(2 h + m + x), m' = 0.9 m + 0.1 h
        h, m = s[:2], s[2:]
        h_new = torch.tanh(2 * h + m + x)
        return torch.cat([h_new, 0.9 * m + 0.1 * h])

    cell = cell_for(leaky, "hidden", state_size=4, input_size=2, hidden_size=2,
                    dtype=torch.float64)
    assert (cell.dim, cell.n_networks, cell.dtype) == (2, 1, torch.float64)
    s, x = states_and_inputs(cell)
    j, jx = autograd_jacobians(cell, s, x)
    _, j_got, jx_got = cell.jacobians(s, x, wrt_input=True)
    torch.testing.assert_close(j_got, j, rtol=0, atol=JAC_ATOL)
    torch.testing.assert_close(jx_got, jx, rtol=0, atol=JAC_ATOL)
    torch.testing.assert_close(cell.output(s), s[..., :2])


def test_threads_are_not_used_for_a_generic_cell(monkeypatch):
    from aelle import spectra

    parts = []
    split = spectra.run_split
    monkeypatch.setattr(spectra, "run_split", lambda fn, b, n: parts.append(n) or split(fn, b, n))
    cell = cell_for(MinimalGated(2, 4).double())
    x = probe(cell, batch=4, steps=15)
    one = lyapunov_spectrum(cell, x, warmup=2, dtype=torch.float64, threads=1)
    two = lyapunov_spectrum(cell, x, warmup=2, dtype=torch.float64, threads=2)
    torch.testing.assert_close(two.per_sequence, one.per_sequence, rtol=0, atol=0)
    lyapunov_spectrum(random_cell("gru", input_size=2, n_networks=1), x, warmup=2, threads=2)
    assert parts == [1, 1, 2]  # an analytic cell is split as asked


def test_cells_of_one_function_stack_and_of_two_modules_do_not():
    torch.manual_seed(0)
    a, b = MinimalGated(2, 3), MinimalGated(2, 3)
    with pytest.raises(ValueError, match="cannot stack cells whose 'fn' differ"):
        stack_cells([cell_for(a), cell_for(b)])
    assert stack_cells([cell_for(a), cell_for(a)]).n_networks == 2


def test_a_generic_cell_creates_nothing_off_its_device():
    cell = cell_for(SkipTanh(3, 4).double()).to(device="meta")
    s = torch.zeros(1, 2, cell.state_size, device="meta", dtype=torch.float64)
    x = torch.zeros(1, 2, cell.input_size, device="meta", dtype=torch.float64)
    s_new, j, jx = cell.jacobians(s, x, wrt_input=True)
    for t in (s_new, j, jx, cell.step(s, x), cell.zero_state(2), *cell.params.values()):
        assert t.device.type == "meta"
    assert j.shape == (1, 2, 8, 8)


@gpu
def test_a_generic_cell_on_cuda_gives_the_cpu_spectrum():
    cell = random_cell("lstm", n_networks=1, state="full")
    x = probe(cell)
    want = lyapunov_spectrum(generic(cell), x, warmup=5, dtype=torch.float64).exponents
    res = lyapunov_spectrum(generic(cell).to(device="cuda"), x, warmup=5, dtype=torch.float64)
    assert res.exponents.device.type == "cuda"
    torch.testing.assert_close(res.exponents.cpu(), want, rtol=0, atol=1e-10)


# ---- what is refused -----------------------------------------------------------------------

class NoSize(nn.Module):
    input_size = 2

    def aelle_step(self, s, x):
        return s


class NoInput(nn.Module):
    aelle_state_size = 3

    def aelle_step(self, s, x):
        return s


class WrongShape(nn.Module):
    aelle_state_size, input_size = 3, 2

    def aelle_step(self, s, x):
        return torch.cat([s, x])


class WrongSize(nn.Module):
    aelle_state_size, input_size = 3, 2

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(4, 4))

    def aelle_step(self, s, x):
        return torch.tanh(self.w @ s)


@pytest.mark.parametrize(("module", "message"), [
    (nn.Linear(3, 4), r"does not know Linear.*aelle_step\(state, input\) -> state and "
                      "aelle_state_size"),
    (NoSize(), "declares aelle_step but not aelle_state_size"),
    (NoInput(), "give it aelle_input_size"),
    (WrongShape(), r"WrongShape.aelle_step returned shape \(5,\) for a state of shape \(3,\)"),
    (WrongSize(), r"WrongSize.aelle_step failed on one sequence's zero state of shape \(3,\)"),
], ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "")
def test_modules_that_do_not_declare_enough_are_refused_clearly(module, message):
    with pytest.raises((TypeError, ValueError), match=message):
        cell_for(module)


def test_bad_declarations_and_arguments_are_refused_clearly():
    class BadSize(NoInput):
        aelle_state_size = 0
        input_size = 2

    with pytest.raises(ValueError, match=r"BadSize\.aelle_state_size must be a positive integer"):
        cell_for(BadSize())
    with pytest.raises(TypeError, match="needs state_size and input_size"):
        cell_for(lambda s, x: s)
    with pytest.raises(TypeError, match="state_size: only for a step function"):
        cell_for(MinimalGated(2, 3), state_size=3)
    with pytest.raises(TypeError, match="a torch module or a step function, got int"):
        cell_for(42)
    with pytest.raises(TypeError, match="not the class MinimalGated: give it an instance"):
        cell_for(MinimalGated)
    with pytest.raises(ValueError, match="'not a name' is not an identifier"):
        cell_for(lambda s, x, **p: s, state_size=2, input_size=1,
                 params={"not a name": torch.ones(2)})
    with pytest.raises(ValueError, match=r"hidden_size must be an integer in \[1, 2\]"):
        cell_for(lambda s, x: s, state_size=2, input_size=1, hidden_size=3)
    with pytest.raises(ValueError, match="jacobian must be one of 'reverse', 'forward'"):
        StepCell.from_function(lambda s, x: s, state_size=2, input_size=1, jacobian="central")
    closed = torch.ones(2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"returned torch\.float64 for a torch\.float32 state"):
        cell_for(lambda s, x, w: s * w + closed, state_size=2, input_size=1,
                 params={"w": torch.ones(2)})
