"""The AeLLE pruner driven through real Optuna studies (ask / report / tell)."""

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from aelle import AeLLE, AeLLEPruner
from aelle.classifiers import good_mask
from aelle.pruners import PrunerHooks

from .synthetic import FAST, aelle_study, final, seed_completed, spectrum, step_once


@pytest.fixture(scope="module", autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


class Fits(PrunerHooks):
    """Hooks that keep what each fit produced (and may act during it)."""

    def __init__(self, during=None):
        super().__init__()
        self.seen, self.during = [], during

    def on_fit(self, pruner):
        self.seen.append((pruner.fitted_on, pruner.model.version))
        if self.during is not None:
            self.during(self)


def test_prunes_bad_trials_and_keeps_good_ones_recording_why():
    study, pruner = aelle_study()
    pruned, attrs = step_once(study, 0.95)
    assert pruned and attrs["decision"] == "prune" and attrs["step"] == 0
    assert attrs["model"] == pruner.model.version == pruner.model_version
    assert len(attrs["model"]) == 12 and attrs["prediction"] > attrs["cut"]
    stand_in = attrs["prediction"]
    kept, attrs = step_once(study, 0.05)
    assert not kept and attrs["decision"] == "continue" and attrs["prediction"] < attrs["cut"]
    # the cut: the median of the completed values and of the pruned trial's prediction
    values = [t.value for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert attrs["cut"] == pytest.approx(np.median([*values, stand_in]))


def test_decide_is_a_value_and_writes_nothing():
    study, pruner = aelle_study()
    trial = study.ask()
    trial.report(final(0.95) + 1.0, 0)
    frozen = study.trials[trial.number]
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    pruner.refresh(study, completed)
    decision = pruner.decide(study, frozen, spectrum=spectrum(0.95), completed=completed)
    assert decision.prune and decision.kind == "prune" and decision.step == 0
    assert decision.model == pruner.model_version and decision.prediction > decision.cut
    assert decision.describe().startswith("prune: predicted final")
    assert study.trials[trial.number].user_attrs == {}  # nothing recorded


def test_the_cut_counts_pruned_trials_by_their_prediction_unless_told_otherwise():
    study, _ = aelle_study(n_completed=9)
    completed = [t.value for t in study.get_trials(states=(TrialState.COMPLETE,))]
    stand_ins = [step_once(study, q)[1]["prediction"] for q in (0.9, 0.95, 1.0)]
    _, attrs = step_once(study, 0.05)
    assert attrs["cut"] == pytest.approx(np.median([*completed, *stand_ins]))
    only, _ = aelle_study(n_completed=9, cut_from="completed")
    _, attrs = step_once(only, 0.05)
    assert attrs["cut"] == pytest.approx(np.median(completed))
    # a trial told to stop that completes anyway (shadow mode, the last epoch) counts once:
    # by its value, no more by its prediction
    pruned, _ = step_once(study, 0.97, complete=1.5)
    assert pruned
    _, attrs = step_once(study, 0.05)
    assert attrs["cut"] == pytest.approx(np.median([*completed, *stand_ins, 1.5]))
    with pytest.raises(ValueError, match="cut_from must be"):
        AeLLEPruner(cut_from="survivors")


def test_a_stopped_trial_told_by_the_caller_counts_in_the_cut():
    study, pruner = aelle_study(n_completed=9)
    completed = [t.value for t in study.get_trials(states=(TrialState.COMPLETE,))]
    pruner.remember_stopped(10_000, 9.0)  # e.g. a restarted coordinator's earlier prunes
    _, attrs = step_once(study, 0.05)
    assert attrs["cut"] == pytest.approx(np.median([*completed, 9.0]))


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


def test_refresh_fits_when_due_and_the_hooks_see_the_new_model():
    hooks = Fits()
    study, pruner = aelle_study(retrain_every=3, hooks=hooks)
    pruner.refresh(study)
    assert hooks.seen == [(16, pruner.model.version)] and pruner.fitted_on == 16
    pruner.refresh(study)  # nothing new completed: no refit
    seed_completed(study, 3, seed=5)
    pruner.refresh(study)
    assert [n for n, _ in hooks.seen] == [16, 19] and hooks.seen[0][1] != hooks.seen[1][1]


def test_a_failing_on_fit_does_not_lose_the_fit():
    class Boom(PrunerHooks):
        def on_fit(self, pruner):
            raise OSError("disk full")

    study, pruner = aelle_study(hooks=Boom())
    pruner.refresh(study)
    assert pruner.model is not None


def test_background_refit_does_not_block_and_wait_joins_it():
    study, pruner = aelle_study(background=True)
    _, attrs = step_once(study, 0.95)
    assert attrs["decision"] in ("fallback", "prune")  # the refit may not have finished yet
    pruner.wait()
    assert pruner.model is not None and pruner.model.fitted and not pruner.fitting
    pruned, attrs = step_once(study, 0.95)
    assert pruned and attrs["model"] == pruner.model.version


def test_trials_completed_during_a_background_fit_get_a_fit_of_their_own():
    def complete_more_during_the_first_fit(hooks):
        if len(hooks.seen) == 1:
            seed_completed(study, 3, seed=5)  # nobody calls refresh() for these

    hooks = Fits(during=complete_more_during_the_first_fit)
    study, pruner = aelle_study(background=True, retrain_every=3, hooks=hooks)
    pruner.refresh(study)
    pruner.wait()
    assert [n for n, _ in hooks.seen] == [16, 19] and pruner.fitted_on == 19


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
    ({"n_startup_trials": True}, "n_startup_trials"),
    ({"quantile": 1.0}, "quantile"),
    ({"fallback": "median"}, "fallback must be BasePruner"),
    ({"explore": 1.5}, "explore"),
    ({"seed": -3}, "seed"),
    ({"retrain_every": 0}, "retrain_every"),
    ({"hooks": {}}, "hooks must be PrunerHooks"),
    ({"region": "pc2"}, "region"),
    ({"model": AeLLE(FAST)}, "fitted AeLLE"),
    ({"model": b"not a model"}, "AeLLE"),
    ({"config": {"dim": 8}}, "config must be AeLLEConfig"),
    ({"curve": optuna.pruners.MedianPruner()}, "unexpected keyword argument 'curve'"),
])
def test_aelle_pruner_arguments_are_validated(kw, message):
    with pytest.raises((ValueError, TypeError), match=message):
        AeLLEPruner(**kw)


def test_a_store_that_is_not_one_is_refused():
    with pytest.raises(ValueError, match="store must be a SpectrumStore"):
        PrunerHooks(store={})
