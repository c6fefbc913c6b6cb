"""The spectrum pruners driven through real Optuna studies (ask / report / tell).

Synthetic trials: a quality q in [0, 1] sets both the spectrum's slope and the final value
(1 + 2q, minimised), so "good" trials (low q) have the flatter spectra, a higher mean exponent,
and the pruner can learn that.
"""

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from aelle import (
    AeLLE,
    AeLLEConfig,
    AeLLEPruner,
    LEThresholdPruner,
    ShadowPruner,
    report_spectrum,
)
from aelle.classifiers import good_mask

FAST = AeLLEConfig(dim=16, hidden=(16,), latent=4, epochs=120, warmup_epochs=30,
                   ramp_epochs=30, components=2, seed=0)
STEPS = 3


def spectrum(q, k=12, step=0, noise=0.0, rng=None):
    x = np.linspace(0, 1, k)
    z = 0.05 - (0.3 + q) * x * (1 + 0.1 * step)
    return z + (noise * rng.standard_normal(k) if rng is not None else 0.0)


def final(q):
    return 1.0 + 2.0 * q


def seed_completed(study, n, seed=0):
    """Add ``n`` completed trials, each with a spectrum and value at every step."""
    rng = np.random.default_rng(seed)
    for q in rng.uniform(0, 1, n):
        study.add_trial(create_trial(
            value=final(q),
            intermediate_values={s: final(q) + 1.0 / (s + 1) for s in range(STEPS)},
            user_attrs={f"aelle:spectrum:{s}": spectrum(q, step=s, noise=0.01, rng=rng).tolist()
                        for s in range(STEPS)},
        ))


def step_once(study, q, step=0, value=None, with_spectrum=True, z=None):
    """Ask a trial, report one step, and return (trial number, should_prune, its attrs)."""
    trial = study.ask()
    trial.report(final(q) + 1.0 if value is None else value, step)
    if with_spectrum:
        report_spectrum(trial, spectrum(q, step=step) if z is None else z, step)
    pruned = trial.should_prune()
    study.tell(trial, state=TrialState.PRUNED if pruned else TrialState.FAIL)
    attrs = study.trials[trial.number].user_attrs
    return pruned, {k[len("aelle:"):]: v for k, v in attrs.items()
                    if k.startswith("aelle:") and not k.startswith("aelle:spectrum")}


def aelle_study(n_completed=16, **kw):
    kw = {"n_startup_trials": 8, "explore": 0.0, "seed": 0, "config": FAST,
          "background": False, **kw}
    pruner = AeLLEPruner(**kw)
    study = optuna.create_study(pruner=pruner)
    seed_completed(study, n_completed)
    return study, pruner


@pytest.fixture(scope="module", autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_prunes_bad_trials_and_keeps_good_ones_recording_why():
    study, pruner = aelle_study()
    pruned, attrs = step_once(study, 0.95)
    assert pruned and attrs["decision"] == "prune" and attrs["step"] == 0
    assert attrs["model"] == pruner.model.version and len(attrs["model"]) == 12
    assert attrs["prediction"] > attrs["cut"]
    stand_in = attrs["prediction"]
    kept, attrs = step_once(study, 0.05)
    assert not kept and attrs["decision"] == "continue" and attrs["prediction"] < attrs["cut"]
    # the cut: the median of the completed values and of the pruned trial's prediction
    values = [t.value for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert attrs["cut"] == pytest.approx(np.median([*values, stand_in]))


def test_the_cut_counts_pruned_trials_by_their_prediction_unless_told_otherwise():
    study, pruner = aelle_study(n_completed=9)
    completed = [t.value for t in study.get_trials(states=(TrialState.COMPLETE,))]
    for q in (0.9, 0.95, 1.0):
        assert step_once(study, q)[0]
    _, attrs = step_once(study, 0.05)
    assert attrs["cut"] > np.median(completed)  # three bad stand-ins raise it
    assert len(pruner._stand_ins(pruner.completed_trials(study))) == 3
    only, _ = aelle_study(n_completed=9, cut_from="completed")
    _, attrs = step_once(only, 0.05)
    assert attrs["cut"] == pytest.approx(np.median(completed))
    # a trial told to stop that completes anyway (shadow mode, the last epoch) counts once
    trial = study.ask()
    pruner.remember_stopped(trial._trial_id, 9.0)
    study.tell(trial, 1.5)
    assert 9.0 not in pruner._stand_ins(pruner.completed_trials(study))
    with pytest.raises(ValueError, match="cut_from must be"):
        AeLLEPruner(cut_from="survivors")


def test_predictions_follow_the_final_value():
    study, _ = aelle_study(n_completed=24)
    qs = np.linspace(0.05, 0.95, 7)
    predicted = [step_once(study, q, step=1)[1]["prediction"] for q in qs]
    assert np.corrcoef(predicted, final(qs))[0, 1] > 0.9


def test_startup_defers_to_the_fallback():
    fallback = optuna.pruners.ThresholdPruner(upper=2.5)
    study, _ = aelle_study(n_completed=3, fallback=fallback)
    pruned, attrs = step_once(study, 0.1, value=3.0)   # the fallback prunes on the value
    assert pruned and attrs["decision"] == "fallback"
    assert attrs["reason"].startswith("startup") and "ThresholdPruner" in attrs["reason"]
    pruned, attrs = step_once(study, 0.95, value=2.0)  # a bad spectrum, but still startup
    assert not pruned and attrs["decision"] == "fallback"


def test_no_spectrum_defers_to_the_fallback():
    study, _ = aelle_study(fallback=optuna.pruners.ThresholdPruner(upper=2.5))
    pruned, attrs = step_once(study, 0.95, value=2.0, with_spectrum=False)
    assert not pruned and attrs["decision"] == "fallback"
    assert attrs["reason"].startswith("no spectrum at step 0")


@pytest.mark.parametrize("value, z, why", [
    (float("nan"), None, "value at step 0 is nan"),
    (float("inf"), None, "value at step 0 is inf"),
    (1.5, [0.1, float("nan"), -0.3], "spectrum at step 0 has non-finite exponents"),
    (1.5, [float("inf"), 0.0], "spectrum at step 0 has non-finite exponents"),
])
def test_divergence_is_pruned_at_once_even_during_startup(value, z, why):
    study, _ = aelle_study(n_completed=0)
    pruned, attrs = step_once(study, 0.1, value=value, z=z)
    assert pruned and attrs["decision"] == "diverged" and attrs["reason"] == why


def test_explore_keeps_a_trial_it_would_prune_and_marks_it():
    study, _ = aelle_study(explore=1.0)
    pruned, attrs = step_once(study, 0.95)
    assert not pruned and attrs["decision"] == "explore" and attrs["explore"] is True
    assert "prediction" in attrs and "would prune" in attrs["reason"]


def test_explore_draws_are_seeded_per_trial():
    def explored(seed):
        study, _ = aelle_study(explore=0.5, seed=seed)
        return [step_once(study, 0.95)[1]["decision"] for _ in range(12)]

    first = explored(3)
    assert first == explored(3)
    assert set(first) == {"explore", "prune"}  # 0.5 of 12 draws: both outcomes occur
    assert first != explored(4)


def test_retrains_only_every_retrain_every_completions():
    study, pruner = aelle_study(retrain_every=4)
    step_once(study, 0.5)
    first = pruner.model.version
    seed_completed(study, 3, seed=1)
    step_once(study, 0.5)
    assert pruner.model.version == first
    seed_completed(study, 1, seed=2)
    step_once(study, 0.5)
    assert pruner.model.version != first


def test_refresh_fits_when_due_and_on_fit_sees_the_new_model():
    seen = []
    study, pruner = aelle_study(retrain_every=3, on_fit=lambda p: seen.append(
        (p.fitted_on, p.model.version)))
    pruner.refresh(study)
    assert seen == [(16, pruner.model.version)] and pruner.fitted_on == 16
    pruner.refresh(study)  # nothing new completed: no refit
    seed_completed(study, 3, seed=5)
    pruner.refresh(study)
    assert [n for n, _ in seen] == [16, 19] and seen[0][1] != seen[1][1]


def test_a_failing_on_fit_does_not_lose_the_fit():
    def boom(_):
        raise OSError("disk full")

    study, pruner = aelle_study(on_fit=boom)
    pruner.refresh(study)
    assert pruner.model is not None


def test_shadow_pruner_records_but_never_prunes():
    inner = AeLLEPruner(n_startup_trials=8, explore=0.0, seed=0, config=FAST, background=False)
    study = optuna.create_study(pruner=ShadowPruner(inner))
    seed_completed(study, 16)
    pruned, attrs = step_once(study, 0.95)
    assert not pruned and attrs["shadow_prune"] is True and attrs["decision"] == "prune"
    assert attrs["shadow_first_prune_step"] == 0
    pruned, attrs = step_once(study, 0.05)
    assert not pruned and attrs["shadow_prune"] is False
    assert "shadow_first_prune_step" not in attrs
    with pytest.raises(ValueError, match="optuna pruner"):
        ShadowPruner("median")


def test_background_refit_does_not_block_and_wait_joins_it():
    study, pruner = aelle_study(background=True)
    _, attrs = step_once(study, 0.95)
    assert attrs["decision"] in ("fallback", "prune")  # the refit may not have finished yet
    pruner.wait()
    assert pruner.model is not None and pruner.model.fitted
    pruned, attrs = step_once(study, 0.95)
    assert pruned and attrs["model"] == pruner.model.version


def test_trials_completed_during_a_background_fit_get_a_fit_of_their_own():
    fits = []

    def complete_more_during_the_first_fit(p):
        fits.append(p.fitted_on)
        if len(fits) == 1:
            seed_completed(study, 3, seed=5)  # nobody calls refresh() for these

    study, pruner = aelle_study(background=True, retrain_every=3,
                                on_fit=complete_more_during_the_first_fit)
    pruner.refresh(study)
    pruner.wait()
    assert fits == [16, 19] and pruner.fitted_on == 19


def test_with_a_curve_pruner_the_spectrum_decides_epoch_0_and_the_curve_after():
    curve = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    study, pruner = aelle_study(curve=curve)
    pruned, attrs = step_once(study, 0.95)  # epoch 0: a bad spectrum is pruned
    assert pruned and attrs["decision"] == "prune"
    # epoch 1: the curve decides; the model's prediction is kept as information
    pruned, attrs = step_once(study, 0.95, step=1, value=final(0.0))
    assert not pruned and attrs["decision"] == "curve" and "continues" in attrs["reason"]
    assert attrs["prediction"] > final(0.5)  # the model still calls the spectrum bad
    number = len(study.trials)
    pruned, attrs = step_once(study, 0.05, step=1, value=final(1.0) + 5.0)
    assert pruned and attrs["decision"] == "curve" and "prunes" in attrs["reason"]
    # a trial the curve stopped stands in the cut by its prediction
    stopped = study.trials[number]._trial_id
    assert pruner._stopped[stopped] == attrs["prediction"]


def test_a_curve_stopped_trial_stands_in_by_its_value_before_there_is_a_model():
    curve = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    study, pruner = aelle_study(n_completed=3, curve=curve)  # startup: no model yet
    number = len(study.trials)
    pruned, attrs = step_once(study, 0.5, step=2, value=99.0)
    assert pruned and attrs["decision"] == "curve" and "prediction" not in attrs
    assert pruner._stopped[study.trials[number]._trial_id] == 99.0


def test_a_carried_model_decides_from_the_first_trial_by_region():
    rng = np.random.default_rng(1)
    qs = rng.uniform(0, 1, 120)
    spectra = [spectrum(q, noise=0.01, rng=rng) for q in qs]
    model = AeLLE(FAST).fit(spectra, final(qs))
    model.calibrate(spectra, good_mask(final(qs)))
    pruner = AeLLEPruner(model=model.to_bytes(), region="pc1", n_startup_trials=0,
                         explore=0.0, seed=0, background=False)
    study = optuna.create_study(pruner=pruner)
    pruned, attrs = step_once(study, 0.95)
    assert pruned and attrs["decision"] == "prune" and "cut" not in attrs
    assert attrs["model"] == model.version
    kept, attrs = step_once(study, 0.05)
    assert not kept and attrs["decision"] == "continue"
    assert not pruner.retrain and pruner.model.version == model.version


def test_a_carried_model_with_reference_values_prunes_on_the_predicted_loss_at_once():
    rng = np.random.default_rng(2)
    qs = rng.uniform(0, 1, 120)
    model = AeLLE(FAST).fit([spectrum(q, noise=0.01, rng=rng) for q in qs], final(qs))
    # the default startup (10) is met by the previous study's 120 final values
    pruner = AeLLEPruner(model=model, reference_values=final(qs), explore=0.0, seed=0,
                         background=False)
    study = optuna.create_study(pruner=pruner)
    pruned, attrs = step_once(study, 0.95)
    assert pruned and attrs["decision"] == "prune"
    assert attrs["cut"] == pytest.approx(np.median(final(qs)))
    kept, attrs = step_once(study, 0.05)
    assert not kept and attrs["decision"] == "continue" and attrs["prediction"] < attrs["cut"]
    alone = AeLLEPruner(model=model, explore=0.0, seed=0, background=False)
    pruned, attrs = step_once(optuna.create_study(pruner=alone), 0.95)
    assert not pruned and attrs["decision"] == "fallback"  # no reference: startup defers
    with pytest.raises(ValueError, match="reference_values must be finite"):
        AeLLEPruner(model=model, reference_values=[1.0, float("nan")])


def test_a_carried_model_without_the_region_is_refused():
    rng = np.random.default_rng(0)
    qs = rng.uniform(0, 1, 40)
    model = AeLLE(FAST).fit([spectrum(q) for q in qs], final(qs))
    with pytest.raises(ValueError, match="no 'pc1' classifier"):
        AeLLEPruner(model=model, region="pc1")


def test_le_threshold_pruner_with_a_fixed_threshold():
    # max LE of spectrum(q) is 0.05 whatever q: a threshold either side decides all trials
    pruner = LEThresholdPruner("max_le", threshold=0.0, n_startup_trials=0, explore=0.0)
    study = optuna.create_study(pruner=pruner)
    pruned, attrs = step_once(study, 0.1)
    assert pruned and attrs["decision"] == "prune" and attrs["model"] == "max_le < 0"
    pruner = LEThresholdPruner("max_le", threshold=0.1, n_startup_trials=0, explore=0.0)
    study = optuna.create_study(pruner=pruner)
    assert not step_once(study, 0.1)[0]


def test_le_threshold_pruner_fits_the_mean_le_threshold():
    pruner = LEThresholdPruner("mean_le", n_startup_trials=8, explore=0.0, seed=0)
    study = optuna.create_study(pruner=pruner)
    seed_completed(study, 30)
    pruned, attrs = step_once(study, 0.95)
    assert pruned and attrs["model"].startswith("mean_le")
    # good trials have the flatter spectra: the fitted rule keeps a high mean LE
    assert ">" in attrs["model"]
    assert not step_once(study, 0.05)[0]


def test_maximised_studies_prune_the_low_values():
    pruner = AeLLEPruner(n_startup_trials=8, explore=0.0, seed=0, config=FAST,
                         background=False)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    seed_completed(study, 16)  # high q: high final value, now the good side
    assert step_once(study, 0.05)[0]
    assert not step_once(study, 0.95)[0]


@pytest.mark.parametrize("kw, message", [
    ({"n_startup_trials": -1}, "n_startup_trials"),
    ({"n_startup_trials": 2.5}, "n_startup_trials"),
    ({"quantile": 1.0}, "quantile"),
    ({"fallback": "median"}, "fallback must be an optuna pruner"),
    ({"explore": 1.5}, "explore"),
    ({"seed": -3}, "seed"),
    ({"retrain_every": 0}, "retrain_every"),
    ({"store": {}}, "store must be a SpectrumStore"),
    ({"on_fit": 3}, "on_fit must be callable"),
    ({"region": "pc2"}, "region"),
    ({"model": AeLLE(FAST)}, "fitted AeLLE"),
    ({"model": b"not a model"}, "AeLLE"),
    ({"config": {"dim": 8}}, "config must be an AeLLEConfig"),
    ({"curve": "median"}, "curve must be an optuna pruner"),
    ({"curve_from": 0}, "curve_from"),
])
def test_aelle_pruner_arguments_are_validated(kw, message):
    with pytest.raises(ValueError, match=message):
        AeLLEPruner(**kw)


@pytest.mark.parametrize("args, kw, message", [
    (("min_le",), {}, "statistic"),
    ((), {"threshold": math.nan}, "threshold"),
    ((), {"quantile": 0}, "quantile"),
])
def test_le_threshold_pruner_arguments_are_validated(args, kw, message):
    with pytest.raises(ValueError, match=message):
        LEThresholdPruner(*args, **kw)


@pytest.mark.parametrize("spectrum_arg, step, message", [
    ([[1.0, 2.0]], 0, "1-D"),
    ([], 0, "non-empty"),
    ([1.0], -1, "step"),
    ([1.0], True, "step"),
])
def test_report_spectrum_rejects_bad_input(spectrum_arg, step, message):
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match=message):
        report_spectrum(trial, spectrum_arg, step)
