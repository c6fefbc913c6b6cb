"""One short trial of each task on a device: the whole loop (data, training, validation, the
spectrum after each epoch) runs there, and what it reports comes back to the host as NumPy."""

import numpy as np
import pytest

from tasks import get, run_trial
from tests.gpu.conftest import gpu
from tests.tasks.conftest import TINY
from tests.tasks.test_training import COMBOS

IDS = [f"{t}-{p.get('arch', '')}" for t, p in COMBOS]


def on(device, task, **extra):
    return {**TINY[task], "device": device, **extra}


def check(out, task, params, settings):
    assert out.state == "complete", out.reason
    size = get(task).spectrum_size(params, settings)
    for r in out.reports:
        assert np.isfinite(r.value)
        assert isinstance(r.spectrum, np.ndarray) and r.spectrum.dtype == np.float64
        assert r.spectrum.shape == (size,) and np.isfinite(r.spectrum).all()
        assert r.train_seconds >= 0 and r.spectrum_seconds > 0


def test_a_trial_asked_for_the_cpu_reports_host_arrays():
    task, params = COMBOS[0]
    settings = on("cpu", task, spectrum_dtype="float32")
    check(run_trial(task, params, settings, seed=0), task, params, settings)


@gpu
@pytest.mark.parametrize(("task", "params"), COMBOS, ids=IDS)
def test_one_short_trial_on_cuda(task, params):
    settings = on("cuda", task, epochs=2)
    out = run_trial(task, params, settings, seed=0)
    check(out, task, params, settings)
    assert [r.epoch for r in out.reports] == [0, 1, 2]


@gpu
@pytest.mark.parametrize(("task", "params"), [c for c in COMBOS if c[0] != "signal"],
                         ids=[i for i in IDS if not i.startswith("signal")])
def test_the_untrained_network_is_the_cpus(task, params):
    """Epoch 0: the weights are drawn on the CPU from the seed, so both devices hold the same
    network and probe; the validation loss agrees to float32, the float64 spectrum closely.
    (The signal task's probe is a point of a chaotic free run: it is left out.)"""
    kw = {"epochs": 1, "spectrum_every": 1}
    cpu = run_trial(task, params, on("cpu", task, **kw), seed=0).reports[0]
    cuda = run_trial(task, params, on("cuda", task, **kw), seed=0).reports[0]
    np.testing.assert_allclose(cuda.value, cpu.value, rtol=1e-4)
    np.testing.assert_allclose(cuda.spectrum, cpu.spectrum, rtol=1e-6, atol=1e-6)


@gpu
@pytest.mark.parametrize(("task", "params"), [COMBOS[0], COMBOS[-2], COMBOS[-1]],
                         ids=[IDS[0], IDS[-2], IDS[-1]])
def test_the_same_seed_repeats_on_cuda(task, params):
    """Whether CUDA's kernels give one seed one result: if this fails, the task's ops need
    torch.use_deterministic_algorithms (and CUBLAS_WORKSPACE_CONFIG) to repeat."""
    settings = on("cuda", task, epochs=2)
    a = run_trial(task, params, settings, seed=3)
    b = run_trial(task, params, settings, seed=3)
    for ra, rb in zip(a.reports, b.reports, strict=True):
        assert ra.value == rb.value and ra.train_loss == rb.train_loss
        np.testing.assert_array_equal(ra.spectrum, rb.spectrum)
