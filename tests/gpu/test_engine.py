"""The engine on a device: every tensor it creates follows the cell's device, and on CUDA every
architecture in both state conventions gives the CPU's float64 spectrum.

The CPU cases run everywhere. The ``meta`` device runs the cells' maps and the explicit frame
without computing anything; a tensor created without the device (on the CPU) cannot be mixed
with meta tensors, so these tests catch it without a GPU. LAPACK's geqrf has no meta kernel,
and the engine checks finiteness with a value, so the whole engine runs on the CPU and CUDA.
"""

from unittest import mock

import pytest
import torch

from aelle import frames, lyapunov_spectrum, parallel
from aelle.cells import get
from aelle.cells.layered import LayeredCell
from aelle.cells.rnn import RNNCell
from aelle.frames import Frame
from tests.aelle.conftest import cases
from tests.gpu.conftest import ON_DEVICES, gpu

CASES = cases()
IDS = [f"{name}-{layers}-{'-'.join(map(str, kw.values()))}" for name, layers, kw in CASES]


def contracting_cell(name, layers, kw, hidden=6, n_networks=2, p=0.3, generator=None):
    """A registered architecture with weights uniform on [-p, p]: at p = 0.3 every
    architecture contracts (largest exponent < 0), so the rounding of one device does not grow
    along the trajectory and two devices must agree to their precision."""
    g = generator or torch.Generator().manual_seed(0)
    cells = [get(name).random(3 if layer == 0 else hidden, hidden, p=p, n_networks=n_networks,
                              generator=g, **kw) for layer in range(layers)]
    return cells[0] if layers == 1 else LayeredCell(tuple(cells))


def inputs(cell, batch=3, steps=60, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, steps, cell.input_size, generator=g, dtype=torch.float64)


# ---- on every machine --------------------------------------------------------------------

@pytest.mark.parametrize(("name", "layers", "kw"), CASES, ids=IDS)
def test_cells_create_nothing_off_the_device(name, layers, kw):
    cell = contracting_cell(name, layers, kw).to(device="meta")
    s = torch.zeros(2, 3, cell.state_size, device="meta", dtype=torch.float64)
    x = torch.zeros(1, 3, cell.input_size, device="meta", dtype=torch.float64)
    s_next, j, jx = cell.jacobians(s, x, wrt_input=True)
    v = torch.zeros(2, 3, cell.dim, device="meta", dtype=torch.float64)
    made = {"state": s_next, "J": j, "Jx": jx, "step": cell.step(s, x),
            "zero_state": cell.zero_state(3), "tangent": cell.tangent(s),
            "with_tangent": cell.with_tangent(s, v), "output": cell.output(s)}
    for what, t in made.items():
        assert t.device.type == "meta", what
    assert j.shape == (2, 3, cell.dim, cell.dim)


def test_the_explicit_frame_stays_on_its_device():
    # a device other than the CPU keeps the explicit frame at any size, so meta runs all of it
    frame = Frame.identity((2, 3), 48, 48, torch.float32, "meta", track_signs=True)
    j = torch.zeros(2, 3, 48, 48, device="meta")
    frame, r = frame.apply(j).orthonormalise()
    assert frame.reflectors is None and r.device.type == "meta"
    parked = frame.park(torch.zeros(2, 3, dtype=torch.bool, device="meta"))
    assert parked.tensor().device.type == "meta"


def test_reflectors_are_the_cpus_choice_only():
    square = torch.zeros(2, 64, 64)
    assert frames.keeps_reflectors(square)
    assert not frames.keeps_reflectors(torch.zeros(2, 64, 8))   # thin frame: explicit
    assert not frames.keeps_reflectors(torch.zeros(2, 8, 8))    # too small for ormqr
    assert not frames.keeps_reflectors(square.to("meta"))       # any other device type
    with mock.patch.dict(frames.REFLECTORS_FROM, {"meta": 40}):
        assert frames.keeps_reflectors(square.to("meta"))


def test_random_cells_draw_on_their_generators_device():
    cell = get("lstm").random(3, 4, generator=torch.Generator(device="cpu").manual_seed(0))
    assert cell.device.type == "cpu"
    assert all(t.device.type == "cpu" for t in cell.tensors().values())


@ON_DEVICES
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_result_tensor_lies_on_the_cells_device(device, dtype):
    cell = contracting_cell("lstm", 2, {"state": "full"}, hidden=24).to(device=device)  # D = 96
    x = inputs(cell, batch=4, steps=30)          # given on the CPU: the engine moves them
    h0 = torch.zeros(4, cell.state_size)         # likewise
    res = lyapunov_spectrum(cell, x, warmup=5, t_on=2, dtype=dtype, return_ftle=True,
                            return_q=True, on_divergence="mark", h0=h0)
    expected = {"exponents": torch.float64, "per_sequence": torch.float64, "std": torch.float64,
                "diverged": torch.bool, "ftle": torch.float64, "ftle_steps": torch.int64,
                "q": dtype}
    for field, want in expected.items():
        t = getattr(res, field)
        assert t.device.type == device, field
        assert t.dtype == want, field
    assert res.q.shape == (2, 4, 96, 96) and torch.isfinite(res.exponents).all()


@ON_DEVICES
def test_threads_leave_a_gpu_batch_whole(device):
    cell = contracting_cell("gru", 1, {}, hidden=8).to(device=device)
    x = inputs(cell, batch=6, steps=20)
    with mock.patch("aelle.spectra.run_split", wraps=parallel.run_split) as split:
        lyapunov_spectrum(cell, x, dtype=torch.float64, threads=3)
        lyapunov_spectrum(cell, x, dtype=torch.float64)  # threads=None: the engine decides
    parts = [call.args[2] for call in split.call_args_list]
    assert parts == ([3, 1] if device == "cpu" else [1, 1])


# ---- on a CUDA device ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "layers", "kw"), CASES, ids=IDS)
@pytest.mark.parametrize("k", [None, 2])
@gpu
def test_cuda_float64_equals_the_cpu(name, layers, kw, k):
    cell = contracting_cell(name, layers, kw)
    x = inputs(cell)
    kwargs = {"warmup": 10, "t_on": 2, "k": k, "dtype": torch.float64, "return_q": True}
    cpu = lyapunov_spectrum(cell, x, **kwargs)
    cuda = lyapunov_spectrum(cell.to(device="cuda"), x.cuda(), **kwargs)
    for field in ("exponents", "per_sequence", "std", "q"):
        torch.testing.assert_close(getattr(cuda, field).cpu(), getattr(cpu, field),
                                   rtol=1e-9, atol=1e-9, msg=lambda m, f=field: f"{f}: {m}")


def _floored(exponents: torch.Tensor) -> torch.Tensor:
    """Directions that collapsed exactly (a dead ReLU unit) at some steps: their exponent
    averages the floor log(finfo(dtype).tiny), which depends on the dtype."""
    return exponents < -50


@pytest.mark.parametrize(("name", "layers", "kw"), CASES, ids=IDS)
@gpu
def test_cuda_float32_is_as_close_to_float64_as_the_cpus_float32(name, layers, kw,
                                                                  exact_float32):
    """Float32 tolerance is what float32 arithmetic makes of this problem: the CPU's float32
    error against float64. The GPU rounds in another order, so its error may differ, but not
    by more than a few times the CPU's (a floor of 1e-5 relative covers a CPU error that is
    tiny by chance)."""
    cell = contracting_cell(name, layers, kw)
    x = inputs(cell)
    kwargs = {"warmup": 10}
    ref = lyapunov_spectrum(cell, x, dtype=torch.float64, **kwargs).exponents
    cpu32 = lyapunov_spectrum(cell, x, dtype=torch.float32, **kwargs).exponents
    gpu32 = lyapunov_spectrum(cell.to(device="cuda"), x.cuda(), dtype=torch.float32,
                              **kwargs).exponents.cpu()
    floored = _floored(ref)
    scale = 1 + ref.abs()
    cpu_err = ((cpu32 - ref).abs() / scale).masked_fill(floored, 0).amax(-1, keepdim=True)
    gpu_err = ((gpu32 - ref).abs() / scale).masked_fill(floored, 0)
    assert (gpu_err <= 4 * cpu_err + 1e-5).all(), (gpu_err.amax(-1), cpu_err)
    # collapsed directions: the float32 floor on both devices
    torch.testing.assert_close(gpu32[floored], cpu32[floored], rtol=1e-3, atol=1e-3)


@gpu
def test_cuda_reflector_frames_equal_the_cpu():
    """The reflector frame (ormqr), which CUDA does not use by default, is still right there."""
    cell = contracting_cell("lstm", 1, {"state": "full"}, hidden=24)  # D = 48 >= 40
    x = inputs(cell)
    cpu = lyapunov_spectrum(cell, x, warmup=5, dtype=torch.float64, return_q=True)
    with mock.patch.dict(frames.REFLECTORS_FROM, {"cuda": 40}):
        cuda = lyapunov_spectrum(cell.to(device="cuda"), x.cuda(), warmup=5,
                                 dtype=torch.float64, return_q=True)
    torch.testing.assert_close(cuda.exponents.cpu(), cpu.exponents, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(cuda.q.cpu(), cpu.q, rtol=1e-8, atol=1e-8)


@gpu
def test_cuda_divergence_is_found_where_the_cpu_finds_it():
    n = 4
    eye = torch.eye(n)
    cell = RNNCell(eye[None], 30 * eye[None], torch.zeros(1, n), nonlinearity="relu")
    x = torch.zeros(3, 60, n)
    x[1, 0] = 1.0   # relu(30^t) overflows float32 near t = 27
    x[2] = -1.0     # dead from the start: floored, not diverged
    cpu = lyapunov_spectrum(cell, x, warmup=2, on_divergence="mark")
    cuda = lyapunov_spectrum(cell.to(device="cuda"), x.cuda(), warmup=2, on_divergence="mark")
    assert cuda.divergences == cpu.divergences
    assert cuda.diverged.tolist() == [False, True, False]
    torch.testing.assert_close(cuda.exponents.cpu(), cpu.exponents, rtol=1e-5, atol=1e-4)


@gpu
def test_stacked_networks_on_cuda_equal_separate_calls():
    g = torch.Generator(device="cuda").manual_seed(0)
    cell = get("gru").random(3, 16, p=0.3, n_networks=8, generator=g)  # drawn on the GPU
    assert cell.device.type == "cuda"
    x = inputs(cell).cuda()
    together = lyapunov_spectrum(cell, x, warmup=5, dtype=torch.float64)
    for i in (0, 7):
        alone = cell.map_tensors(lambda t, i=i: t[i:i + 1])
        one = lyapunov_spectrum(alone, x, warmup=5, dtype=torch.float64)
        torch.testing.assert_close(together.exponents[i], one.exponents, rtol=0, atol=1e-10)
