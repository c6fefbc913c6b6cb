"""The spectrum engine against an independent autograd + QR computation and known systems."""

import math

import pytest
import torch

from aelle import SpectrumDivergedError, lyapunov_spectrum, stack_cells
from aelle.cells.rnn import RNNCell
from aelle.systems import HenonMap, LinearMap
from tests.aelle.conftest import random_cell
from tests.aelle.reference import autograd_spectrum


def _inputs(b, t, i, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(b, t, i, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("name", "kw"), [("lstm", {"state": "full"}),
                                          ("lstm", {"state": "hidden"}), ("gru", {}),
                                          ("rnn", {})])
def test_two_layer_spectrum_matches_autograd_qr(name, kw):
    cell = random_cell(name, layers=2, n_networks=1, hidden=6, **kw)
    x = _inputs(3, 40, cell.input_size)
    res = lyapunov_spectrum(cell, x, warmup=8, dtype=torch.float64)
    ref = autograd_spectrum(cell, x, warmup=8)
    assert res.exponents.shape == (cell.dim,)
    torch.testing.assert_close(res.per_sequence, ref, rtol=0, atol=1e-8)
    torch.testing.assert_close(res.exponents, ref.mean(0), rtol=0, atol=1e-8)
    torch.testing.assert_close(res.std, ref.std(0), rtol=0, atol=1e-8)


def test_henon_map_exponents():
    # 16 orbits from different starting points, 2000 steps each after the warm-up
    h0 = 0.1 * torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = torch.zeros(16, 2100, 0, dtype=torch.float64)
    res = lyapunov_spectrum(HenonMap.classic(), x, warmup=100, dtype=torch.float64, h0=h0)
    assert abs(res.exponents[0].item() - 0.419) < 0.01
    assert abs(res.exponents[1].item() - (-1.623)) < 0.01
    # the Henon map's Jacobian has constant determinant -b: exponents sum to log b
    assert abs(res.exponents.sum().item() - math.log(0.3)) < 1e-9


def test_constant_diagonal_linear_map_is_exact():
    d = torch.tensor([1.5, -0.9, 0.5, 0.1], dtype=torch.float64)
    cell = LinearMap(torch.diag(d)[None], torch.zeros(1, 4, dtype=torch.float64))
    res = lyapunov_spectrum(cell, torch.zeros(2, 50, 0), warmup=5, dtype=torch.float64)
    torch.testing.assert_close(res.exponents, d.abs().log(), rtol=0, atol=1e-14)


def test_sum_of_exponents_is_mean_log_det():
    cell = random_cell("gru", n_networks=1, hidden=8)
    x = _inputs(2, 60, cell.input_size)
    res = lyapunov_spectrum(cell, x, warmup=10, dtype=torch.float64)
    s = cell.zero_state(2)
    logdet = torch.zeros(2, dtype=torch.float64)
    for t in range(60):
        s, j, _ = cell.jacobians(s, x[None, :, t])
        if t >= 10:
            logdet += torch.linalg.slogdet(j[0])[1]
    torch.testing.assert_close(res.per_sequence.sum(-1), logdet / 50, rtol=0, atol=1e-6)


def test_t_on_changes_only_rounding_of_the_leading_exponents():
    cell = random_cell("lstm", n_networks=1, hidden=20, input_size=4, state="hidden")
    x = _inputs(4, 130, 4)
    full = lyapunov_spectrum(cell, x, warmup=30, t_on=1)
    sparse = lyapunov_spectrum(cell, x, warmup=30, t_on=5)
    lead = cell.dim // 5
    assert (full.exponents[:lead] - sparse.exponents[:lead]).abs().max() < 1e-2


def _gain_rnn(gain, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eye = torch.eye(n, dtype=torch.float64)
    return RNNCell(eye[None], gain * v[None], torch.zeros(1, n, dtype=torch.float64))


def test_stability_regimes_of_a_tanh_rnn():
    x = _inputs(4, 300, 64, scale=math.sqrt(0.6))
    contracting = lyapunov_spectrum(_gain_rnn(0.5), x, warmup=100, k=4)
    chaotic = lyapunov_spectrum(_gain_rnn(4.0), x, warmup=100, k=4)
    assert contracting.exponents[0] < -0.3
    assert chaotic.exponents[0] > 0.1


def test_leading_k_equals_head_of_full_spectrum():
    cell = random_cell("lstm", n_networks=1, hidden=10)
    x = _inputs(3, 50, cell.input_size)
    full = lyapunov_spectrum(cell, x, warmup=10, dtype=torch.float64)
    head = lyapunov_spectrum(cell, x, warmup=10, k=5, dtype=torch.float64)
    assert head.exponents.shape == (5,)
    torch.testing.assert_close(head.exponents, full.exponents[:5], rtol=0, atol=1e-10)


def test_stacked_networks_equal_separate_calls():
    cells = [random_cell("gru", n_networks=1, hidden=7, seed=s) for s in range(3)]
    x = _inputs(4, 40, cells[0].input_size)
    together = lyapunov_spectrum(stack_cells(cells), x, warmup=5, dtype=torch.float64)
    assert together.exponents.shape == (3, 7)
    assert together.per_sequence.shape == (3, 4, 7)
    for i, c in enumerate(cells):
        alone = lyapunov_spectrum(c, x, warmup=5, dtype=torch.float64)
        torch.testing.assert_close(together.exponents[i], alone.exponents, rtol=0, atol=1e-12)
    per_net_inputs = torch.stack([x, x.flip(0), 2 * x])
    sep = lyapunov_spectrum(stack_cells(cells), per_net_inputs, warmup=5, dtype=torch.float64)
    alone = lyapunov_spectrum(cells[2], 2 * x, warmup=5, dtype=torch.float64)
    torch.testing.assert_close(sep.exponents[2], alone.exponents, rtol=0, atol=1e-12)


@pytest.mark.parametrize("t_on", [1, 3])
def test_ftle_series_average_to_the_exponents(t_on):
    cell = random_cell("rnn", n_networks=1, hidden=6)
    x = _inputs(2, 37, cell.input_size)
    res = lyapunov_spectrum(cell, x, warmup=5, t_on=t_on, dtype=torch.float64,
                            return_ftle=True, return_q=True)
    n_qr = math.ceil(32 / t_on)
    assert res.ftle.shape == (2, n_qr, 6)
    assert res.ftle_steps.tolist()[-1] == 31
    covered = torch.diff(res.ftle_steps, prepend=torch.tensor([-1])).double()
    torch.testing.assert_close((res.ftle * covered[:, None]).sum(1) / 32, res.per_sequence)
    eye = torch.eye(6, dtype=torch.float64).expand(2, 6, 6)
    torch.testing.assert_close(res.q.mT @ res.q, eye, rtol=0, atol=1e-12)


def test_return_q_spans_the_leading_directions_with_positive_r():
    cell = random_cell("gru", n_networks=1, hidden=6)
    x = _inputs(2, 30, cell.input_size)
    res = lyapunov_spectrum(cell, x, warmup=0, k=3, dtype=torch.float64, return_q=True)
    assert res.q.shape == (2, 6, 3)
    s = cell.zero_state(2)
    q = torch.eye(6, 3, dtype=torch.float64).expand(1, 2, 6, 3)
    for t in range(30):  # the frame is the one plain Gram-Schmidt gives
        s, j, _ = cell.jacobians(s, x[None, :, t])
        q, r = torch.linalg.qr(j @ q)
        q = q * torch.sign(torch.diagonal(r, 0, -2, -1))[..., None, :]
    torch.testing.assert_close(res.q, q[0], rtol=0, atol=1e-10)


def _exploding_relu(n=4):
    eye = torch.eye(n)
    return RNNCell(eye[None], 30 * eye[None], torch.zeros(1, n), nonlinearity="relu")


def test_divergence_raises_naming_step_and_sequence():
    x = torch.zeros(3, 60, 4)
    x[1, 0] = 1.0  # only sequence 1 is kicked; relu(30^t) overflows float32 near t = 27
    with pytest.raises(SpectrumDivergedError) as err:
        lyapunov_spectrum(_exploding_relu(), x, warmup=2)
    div = err.value.divergence
    assert (div.sequence, div.network) == (1, 0)
    assert 20 < div.step < 40
    assert f"step {div.step} of sequence 1" in str(err.value)


def test_divergence_can_be_marked_instead():
    x = torch.zeros(3, 60, 4)
    x[1, 0] = 1.0
    x[2] = -1.0  # stays at zero: relu kills it
    res = lyapunov_spectrum(_exploding_relu(), x, warmup=2, on_divergence="mark")
    assert res.is_diverged
    assert res.diverged.tolist() == [False, True, False]
    assert torch.isnan(res.per_sequence[1]).all()
    assert torch.isfinite(res.exponents).all()
    assert len(res.divergences) == 1 and res.divergences[0].sequence == 1


@pytest.mark.parametrize("threads", [2, 3])
def test_sequences_split_over_threads_give_the_serial_result(threads):
    cell = random_cell("lstm", n_networks=2, hidden=5)
    x = _inputs(5, 30, cell.input_size)
    kw = {"warmup": 4, "t_on": 2, "dtype": torch.float64, "return_ftle": True, "return_q": True}
    serial = lyapunov_spectrum(cell, x, threads=1, **kw)
    split = lyapunov_spectrum(cell, x, threads=threads, **kw)
    for field in ("exponents", "per_sequence", "std", "ftle", "ftle_steps", "q"):
        # the same arithmetic up to the rounding of a one-threaded BLAS
        torch.testing.assert_close(getattr(split, field), getattr(serial, field),
                                   rtol=1e-8, atol=1e-10)


def test_split_divergences_name_the_sequence_of_the_whole_batch():
    x = torch.zeros(5, 60, 4)
    x[3, 0] = 1.0  # in the second of two slices (sequences 0-1 | 2-4)
    x[4, 0] = 0.5  # overflows a step later than sequence 3
    with pytest.raises(SpectrumDivergedError) as err:
        lyapunov_spectrum(_exploding_relu(), x, warmup=2, threads=2)
    serial = lyapunov_spectrum(_exploding_relu(), x, warmup=2, threads=1, on_divergence="mark")
    assert err.value.divergence == serial.divergences[0]
    assert err.value.divergence.sequence == 3
    x[0, 0] = 0.5  # now the first slice diverges too
    marked = lyapunov_spectrum(_exploding_relu(), x, warmup=2, threads=2, on_divergence="mark")
    serial = lyapunov_spectrum(_exploding_relu(), x, warmup=2, threads=1, on_divergence="mark")
    assert marked.diverged.tolist() == [True, False, False, True, True]
    assert marked.divergences == serial.divergences
    assert {d.sequence for d in marked.divergences} == {0, 3, 4}
    torch.testing.assert_close(marked.exponents, serial.exponents)


def test_split_leaves_the_thread_settings_of_the_process_alone():
    import threading

    before = torch.get_num_threads()
    cell = random_cell("gru", n_networks=1, hidden=6)
    lyapunov_spectrum(cell, _inputs(4, 20, cell.input_size), threads=2)
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert torch.get_num_threads() == before
    assert seen == [before]


def test_dead_relu_direction_is_floored_not_minus_infinity():
    cell = RNNCell(torch.eye(2)[None], torch.eye(2)[None], torch.zeros(1, 2), nonlinearity="relu")
    res = lyapunov_spectrum(cell, -torch.ones(1, 10, 2), warmup=1)
    assert torch.isfinite(res.exponents).all()
    assert (res.exponents < -80).all()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"warmup": 50}, "none after the warm-up"),
    ({"warmup": -1}, "warmup"),
    ({"t_on": 0}, "t_on"),
    ({"k": 99}, "k must be"),
    ({"on_divergence": "ignore"}, "on_divergence"),
    ({"dtype": torch.int32}, "floating-point"),
    ({"threads": 0}, "threads"),
])
def test_bad_arguments_are_named(kwargs, message):
    cell = random_cell("rnn", n_networks=1)
    x = _inputs(2, 50, cell.input_size)
    with pytest.raises(ValueError, match=message):
        lyapunov_spectrum(cell, x, **kwargs)


def test_inputs_of_the_wrong_width_are_refused():
    cell = random_cell("rnn", n_networks=1)
    with pytest.raises(ValueError, match="features"):
        lyapunov_spectrum(cell, torch.zeros(2, 10, cell.input_size + 1))
