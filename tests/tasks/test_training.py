"""Every task x architecture trains, reports finite losses and spectra; determinism; divergence."""

import numpy as np
import pytest

from tasks import get, names, run_trial
from tasks.smnist import ARCHS
from tests.tasks.conftest import PARAMS, TINY, smnist_params

COMBOS = [("smnist", smnist_params(a)) for a in ARCHS] + [
    ("charrnn", PARAMS["charrnn"]), ("signal", PARAMS["signal"]),
    ("sysid", PARAMS["sysid"]), ("flipflop", PARAMS["flipflop"])]


def test_registry_holds_the_five_tasks():
    assert names() == ["charrnn", "flipflop", "signal", "smnist", "sysid"]
    with pytest.raises(KeyError, match="unknown task 'mocap'"):
        get("mocap")


@pytest.mark.parametrize(("task", "params"), COMBOS,
                         ids=[f"{t}-{p.get('arch', '')}" for t, p in COMBOS])
def test_one_tiny_epoch_gives_finite_loss_and_spectrum(task, params):
    reports = []
    out = run_trial(task, params, TINY[task], seed=0, callback=reports.append)
    assert out.state == "complete", out.reason
    assert [r.epoch for r in reports] == [0, 1]
    for r in reports:
        assert np.isfinite(r.value)
        expected = get(task).spectrum_size(params, TINY[task])
        assert r.spectrum.shape == (expected,)
        assert np.isfinite(r.spectrum).all()
    assert np.isfinite(reports[1].train_loss)
    assert out.value == reports[-1].value and out.epochs == 1


def test_full_state_convention_doubles_the_lstm_spectrum():
    out = run_trial("smnist", smnist_params("lstm"), {**TINY["smnist"], "spectrum_state": "full",
                                                       "report_initial": False}, seed=0)
    assert out.reports[0].spectrum.shape == (32,)


@pytest.mark.parametrize(("task", "params"), COMBOS,
                         ids=[f"{t}-{p.get('arch', '')}" for t, p in COMBOS])
@pytest.mark.parametrize("state", ["hidden", "full"])
def test_spectrum_size_is_known_without_training(task, params, state):
    settings = {**TINY[task], "spectrum_state": state, "epochs": 1, "report_initial": False}
    out = run_trial(task, params, settings, seed=0)
    assert get(task).spectrum_size(params, settings) == out.reports[0].spectrum.shape[0]
    assert get(task).spectrum_size(params, {**settings, "spectrum_k": 3}) == 3


def test_same_seed_same_losses_and_spectra_other_seed_differs():
    def run(seed):
        return run_trial("smnist", smnist_params("noisy", 2.0), TINY["smnist"], seed=seed)

    a, b, c = run(3), run(3), run(4)
    for ra, rb in zip(a.reports, b.reports, strict=True):
        assert ra.value == rb.value and ra.train_loss == rb.train_loss
        np.testing.assert_array_equal(ra.spectrum, rb.spectrum)
    assert a.value != c.value


def test_signal_and_charrnn_are_deterministic():
    for task in ("signal", "charrnn"):
        a = run_trial(task, PARAMS[task], TINY[task], seed=1)
        b = run_trial(task, PARAMS[task], TINY[task], seed=1)
        assert a.value == b.value
        np.testing.assert_array_equal(a.reports[-1].spectrum, b.reports[-1].spectrum)


def test_gru_learns_the_digits():
    settings = {**TINY["smnist"], "epochs": 4, "train_size": 600, "val_size": 300, "lr": 1e-2,
                "hidden": 32}
    out = run_trial("smnist", smnist_params("gru", 0.3), settings, seed=0)
    first, last = out.reports[0].value, out.reports[-1].value
    assert last < 0.8 * first, (first, last)


def test_force_tracks_the_target_within_one_epoch():
    from tasks.signal import four_sine

    settings = {**TINY["signal"], "hidden": 256, "steps": 1200}
    out = run_trial("signal", {"g": 1.4, "connectivity": 0}, settings, seed=0)
    scale = float(four_sine(get("signal").settings(settings)).abs().mean())
    # epoch 0: no readout yet, the output is 0 and its MAE is the target's mean magnitude
    assert out.reports[0].value == pytest.approx(scale)
    assert out.reports[1].train_loss < 0.1 * scale


def test_larger_init_gives_larger_max_exponent_at_initialisation():
    maxima = []
    for p in (0.2, 0.6, 1.5):
        settings = {**TINY["smnist"], "hidden": 32, "spectrum_steps": 64, "epochs": 1}
        reports = []
        run_trial("smnist", smnist_params("rnn", p), settings, seed=0,
                  callback=lambda r, out=reports: out.append(r) or False)
        maxima.append(reports[0].max_le)
    assert maxima[0] < maxima[1] < maxima[2], maxima
    assert maxima[0] < 0


def test_probe_overflow_is_a_probe_fact_and_training_goes_on():
    # Lipschitz RNN at the top of the dissertation's init range: A's eigenvalues make the
    # forward-Euler map expand several-fold per step. The task's 8-row digits leave the state
    # finite; a float32 probe of 400 steps leaves the float32 range.
    settings = {**TINY["smnist"], "hidden": 64, "spectrum_steps": 400, "spectrum_dtype": "float32",
                "epochs": 2}
    out = run_trial("smnist", smnist_params("lipschitz", 20.0), settings, seed=0)
    assert out.state == "complete", out.reason
    assert [r.epoch for r in out.reports] == [0, 1, 2]
    first = out.reports[0]
    assert first.spectrum is None and np.isfinite(first.value)
    assert first.probe_error.startswith("float32 probe: non-finite state at step")
    assert all(np.isfinite(r.value) for r in out.reports)


def test_float64_probe_carries_the_network_that_overflows_float32():
    settings = {**TINY["smnist"], "hidden": 64, "spectrum_steps": 100, "epochs": 1}
    assert get("smnist").settings(settings).spectrum_dtype == "float64"
    out = run_trial("smnist", smnist_params("lipschitz", 20.0), settings, seed=0)
    short32 = run_trial("smnist", smnist_params("lipschitz", 20.0),
                        {**settings, "spectrum_dtype": "float32"}, seed=0)
    assert short32.reports[0].spectrum is None and short32.reports[0].probe_error
    assert out.reports[0].probe_error is None and out.reports[0].max_le > 0
    assert out.reports[0].value == short32.reports[0].value  # the probe never touches training


def test_non_finite_loss_on_the_task_inputs_is_divergence():
    # init so large that the state overflows within the 8 rows of a digit: the loss is NaN
    out = run_trial("smnist", smnist_params("lipschitz", 1e10), {**TINY["smnist"], "hidden": 64},
                    seed=0)
    assert out.state == "diverged"
    assert out.reason.startswith("epoch 0: validation loss is nan")
    assert out.value is None and out.reports == []


def test_auto_state_is_full_for_cornn_and_lem_hidden_otherwise():
    task = get("smnist")
    for arch in ARCHS:
        s = task.resolve(smnist_params(arch), TINY["smnist"])
        assert s.spectrum_state == ("full" if arch in ("cornn", "lem") else "hidden"), arch
        expected = 32 if arch in ("cornn", "lem") else 16
        assert task.spectrum_size(smnist_params(arch), TINY["smnist"]) == expected
    assert get("charrnn").resolve(PARAMS["charrnn"], TINY["charrnn"]).spectrum_state == "hidden"
    with pytest.raises(ValueError, match="spectrum_dtype"):
        task.settings({"spectrum_dtype": "float16"})


def test_callback_returning_false_prunes():
    out = run_trial("smnist", smnist_params("gru"), {**TINY["smnist"], "epochs": 3}, seed=0,
                    callback=lambda r: r.epoch < 1)
    assert out.state == "pruned" and out.epochs == 1 and "after epoch 1" in out.reason


def test_spectrum_every_skips_epochs_but_not_the_last():
    settings = {**TINY["smnist"], "epochs": 3, "spectrum_every": 2}
    out = run_trial("smnist", smnist_params("rnn"), settings, seed=0)
    assert [r.spectrum is not None for r in out.reports] == [True, False, True, True]


def test_spectrum_initial_off_skips_the_untrained_networks_probe_only():
    settings = {**TINY["smnist"], "epochs": 2, "spectrum_initial": False}
    out = run_trial("smnist", smnist_params("rnn"), settings, seed=0)
    assert [r.spectrum is not None for r in out.reports] == [False, True, True]
    assert out.reports[0].value > 0 and out.reports[0].spectrum_seconds < 1e-3


def test_stopped_after_epoch_0_keeps_initial_value():
    out = run_trial("signal", PARAMS["signal"], TINY["signal"], seed=0, callback=lambda r: False)
    assert out.state == "pruned" and out.epochs == 0 and out.value is not None
