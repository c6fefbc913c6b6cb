"""The joint pruner: a calibrated prediction of the final loss from the epoch-0 spectrum and the
curve so far, deciding through Optuna's public API."""

import math

import numpy as np
import optuna
import pytest

from aelle.pruners import (
    RERUN,
    JointModel,
    JointPruner,
    Kind,
    PlainPruner,
    make,
    queue_finalists,
    report_spectrum,
    seed_of,
)
from aelle.pruners._joint_shipped import dumps_table, shipped

EPOCHS = 4


def spectrum(q: float) -> list[float]:
    # the leading exponent says how far from the edge of chaos the untrained network is
    return [q, q - 0.5, q - 1.0, -2.0]


def curve(q: float, rng) -> list[float]:
    final = math.exp(2.0 * q) * (1 + 0.05 * rng.standard_normal())
    return [final * (1 + 2.0 / (1 + e)) for e in range(EPOCHS + 1)]


@pytest.fixture(scope="module")
def model() -> JointModel:
    rng = np.random.default_rng(0)
    m = JointModel(EPOCHS, folds=3, max_iter=60, alpha=0.1)
    x, y, g, s = [], [], [], []
    for i, q in enumerate(rng.uniform(-1.0, 1.0, 90)):
        values = curve(q, rng)
        for e in range(EPOCHS + 1):
            x.append(m.features(spectrum(q), values, e))
            y.append(math.log(values[-1]))
            g.append(i)
            s.append(e)
    return m.fit(np.stack(x), np.array(y), np.array(g), np.array(s))


def run(study: optuna.Study, q: float, rng, later: float = 1.0) -> tuple[bool, int]:
    """One trial with init quality ``q``, its values after epoch 0 times ``later``: (pruned,
    the step it stopped at)."""
    trial = study.ask()
    values = [v * (later if e else 1.0) for e, v in enumerate(curve(q, rng))]
    for e, v in enumerate(values):
        trial.report(v, e)
        if e == 0:
            report_spectrum(trial, spectrum(q), 0)
        if e < EPOCHS and trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return True, e
    study.tell(trial, values[-1])
    return False, EPOCHS


def test_the_lower_bound_is_calibrated_on_held_out_networks(model):
    assert all(model.margin(e) < 0 for e in range(EPOCHS + 1))
    rng = np.random.default_rng(1)
    qs = rng.uniform(-1.0, 1.0, 200)
    runs = [curve(q, rng) for q in qs]
    for e in (0, 2):
        rows = [model.features(spectrum(q), v, e) for q, v in zip(qs, runs, strict=True)]
        lower = model.predict(np.stack(rows)) + model.margin(e)
        covered = np.mean(np.log([v[-1] for v in runs]) >= lower)
        assert 0.8 <= covered <= 0.99


def test_a_hopeless_configuration_is_refused_at_epoch_0_and_a_better_one_trained(model):
    rng = np.random.default_rng(2)
    study = optuna.create_study(pruner=JointPruner(model))
    assert run(study, -0.8, rng) == (False, EPOCHS)
    assert run(study, 0.9, rng) == (True, 0)      # the screen: no epoch spent
    assert run(study, -0.95, rng) == (False, EPOCHS)
    no_screen = optuna.create_study(pruner=JointPruner(model, screen=False))
    run(no_screen, -0.8, rng)
    pruned, step = run(no_screen, 0.9, rng)
    assert pruned and step == 1


def test_it_never_prunes_a_maximised_study(model):
    rng = np.random.default_rng(3)
    study = optuna.create_study(direction="maximize", pruner=JointPruner(model))
    assert [run(study, q, rng)[0] for q in (-0.8, 0.9, 0.7)] == [False] * 3


def test_stacking_on_the_study_keeps_a_good_configuration(model):
    rng = np.random.default_rng(4)
    study = optuna.create_study(pruner=JointPruner(model, learn="stack", stack_from=3))
    for q in (-0.5, -0.2, 0.0, -0.4):
        run(study, q, rng)
    assert run(study, -0.99, rng) == (False, EPOCHS)
    assert run(study, 0.95, rng)[0]


def test_make_gives_the_shipped_model_of_a_zoo_task_and_falls_back_elsewhere():
    table = shipped()
    assert {"smnist", "signal", "charrnn"} <= set(table)
    assert all({"hp", "spectrum"} <= set(models) for models in table.values())
    read = make("joint", task="smnist", hp_of=lambda params: np.zeros(13))
    assert read.model.inputs == "hp" and read.cut0 is not None
    # without a reader of the study's parameters: SuccessiveHalving, or the spectrum if asked
    assert isinstance(make("joint", task="smnist"), optuna.pruners.SuccessiveHalvingPruner)
    assert make("joint", task="smnist", inputs="spectrum").model.inputs == "spectrum"
    with pytest.raises(ValueError, match="cannot be read"):
        make("joint", task="smnist", inputs="hp")
    assert isinstance(make("joint", task="my_plugin"), optuna.pruners.SuccessiveHalvingPruner)
    with pytest.raises(ValueError, match="unknown for joint"):
        make("joint", task="smnist", warmup=3)


def test_a_missing_or_corrupt_model_file_is_named(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="missing"):
        shipped(tmp_path / "absent.pkl")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(dumps_table({"smnist": model})[:100])
    with pytest.raises(ValueError, match=r"bad\.pkl.*corrupt"):
        shipped(bad)
    good = tmp_path / "good.pkl"
    good.write_bytes(dumps_table({"smnist": model}))
    assert isinstance(make("joint", task="smnist", inputs="spectrum", model_path=str(good)),
                      JointPruner)


def test_bad_options_are_refused(model):
    with pytest.raises(ValueError, match="hp_of"):
        JointPruner(JointModel(EPOCHS, use_hp=True, models=[object()]))
    with pytest.raises(ValueError, match="fitted"):
        JointPruner(JointModel(EPOCHS))
    with pytest.raises(ValueError, match="learn"):
        JointPruner(model, learn="forget")
    with pytest.raises(ValueError, match="screen_adapt"):
        JointPruner(model, screen_adapt=-1, screen_quantile=0.1)
    with pytest.raises(ValueError, match="screen_adapt takes its share from screen_quantile"):
        JointPruner(model, screen_adapt=5)
    with pytest.raises(ValueError, match="k"):
        JointPruner(model, k=0)
    with pytest.raises(ValueError, match="screen_quantile"):
        JointPruner(model, screen_quantile=0.0)
    with pytest.raises(ValueError, match="screen_warmup"):
        JointPruner(model, screen_warmup=-1)
    with pytest.raises(ValueError, match="inputs"):
        make("joint", task="smnist", inputs="weights")
    with pytest.raises(RuntimeError, match="refit"):
        JointPruner(JointModel(EPOCHS, models=[object()]), screen_quantile=0.1)
    with pytest.raises(ValueError, match="finalists"):
        JointPruner(model, finalists=0)
    with pytest.raises(ValueError, match="finalists: a planned screen screens at step 0"):
        JointPruner(model, finalists=2, screen=False)
    with pytest.raises(ValueError, match=r"finalists: .* no shipped joint model of 'my_plugin'"):
        make("joint", task="my_plugin", finalists=3)
    with pytest.raises(ValueError, match=r"finalists: .* parameters cannot be read"):
        make("joint", task="smnist", finalists=3)  # no hp_of: another search space
    with pytest.raises(ValueError, match="no planned screen"):
        queue_finalists(optuna.create_study(), JointPruner(model), 2)


class Always(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_then_decides_from_epoch_1_and_the_model_screens_epoch_0(model):
    rng = np.random.default_rng(5)
    study = optuna.create_study(pruner=JointPruner(model, then=Always()))
    assert run(study, -0.8, rng) == (True, 1)     # passes the screen, the curve pruner stops it
    lenient = optuna.create_study(pruner=JointPruner(model, screen=False,
                                                     then=optuna.pruners.NopPruner()))
    run(lenient, -0.8, rng)
    assert run(lenient, 0.9, rng) == (False, EPOCHS)  # the joint model alone stops it at 1
    screened = optuna.create_study(pruner=JointPruner(model, then=optuna.pruners.NopPruner()))
    run(screened, -0.8, rng)
    assert run(screened, 0.9, rng) == (True, 0)
    assert isinstance(make("joint", task="my_plugin", then="median"), optuna.pruners.MedianPruner)
    assert make("joint", task="smnist", inputs="spectrum",
                then="successive_halving").then is not None
    with pytest.raises(ValueError, match="then must be one of"):
        make("joint", task="smnist", then="hyperband")


def test_a_fixed_screen_passes_only_the_best_share_of_the_reference_from_the_first_trial(model):
    cut = model.first_quantile(0.2)
    assert model.first_quantile(0.05) <= cut <= model.first_quantile(0.5)
    rng = np.random.default_rng(6)
    pruner = JointPruner(model, screen_quantile=0.2, then=optuna.pruners.NopPruner())
    study = optuna.create_study(pruner=pruner)
    assert run(study, -0.95, rng) == (False, EPOCHS)   # the first trial, and it is good
    assert run(study, 0.3, rng) == (True, 0)           # not in the best 20 %
    assert pruner.reason.startswith("screen: predicted final") and "best 20%" in pruner.reason
    decision = PlainPruner(pruner).decide(study, study.trials[-1], spectrum=None,
                                          completed=[])
    assert decision.prune and decision.kind == Kind.PRUNE and "screen" in decision.describe()
    assert run(study, -0.9, rng) == (False, EPOCHS)


def test_with_records_a_study_whose_configurations_all_look_bad_still_trains_some(model):
    rng = np.random.default_rng(7)
    strict = optuna.create_study(pruner=JointPruner(model, screen_quantile=0.05,
                                                    then=optuna.pruners.NopPruner()))
    assert [run(strict, q, rng)[0] for q in (0.8, 0.9, 0.5, 0.95)] == [True] * 4
    records = optuna.create_study(pruner=JointPruner(
        model, screen_quantile=0.05, screen_records=True, screen_warmup=2,
        then=optuna.pruners.NopPruner()))
    # the first two are screened whatever they predict; then a record passes, a worse one not
    assert [run(records, q, rng) for q in (0.8, 0.9, 0.5, 0.95, 0.2)] == [
        (True, 0), (True, 0), (False, EPOCHS), (True, 0), (False, EPOCHS)]


def test_an_adaptive_screen_trains_the_best_share_of_the_study_itself(model):
    rng = np.random.default_rng(8)
    adapt = optuna.create_study(pruner=JointPruner(
        model, screen_quantile=0.3, screen_adapt=3, then=optuna.pruners.NopPruner()))
    # every one worse than the reference's best 30 %; from the third on, the study's own best
    # 30 % pass: 0.4 is no record (0.2 came before) and passes all the same
    assert [run(adapt, q, rng)[0] for q in (0.8, 0.9, 0.5, 0.95, 0.2, 0.85, 0.4)] == [
        True, True, False, True, False, True, False]
    assert run(adapt, 0.99, rng) == (True, 0)
    assert adapt.pruner.reason.endswith("nor in the best 30% of its 8")


@pytest.mark.parametrize("learn", ["stack", "finetune"])
def test_learning_from_the_study_moves_its_predictions_to_the_studys_finals(model, learn):
    # the study's networks end ten times worse than their first loss says to the carried model
    rng = np.random.default_rng(9)
    fixed = dict(screen_quantile=0.5, then=optuna.pruners.NopPruner())
    carried = optuna.create_study(pruner=JointPruner(model, **fixed))
    learns = optuna.create_study(pruner=JointPruner(model, learn=learn, stack_from=3, **fixed))
    for study in (carried, learns):
        for q in (-0.9, -0.8, -0.95):
            assert run(study, q, rng, later=10.0) == (False, EPOCHS)
    assert run(carried, -0.9, rng, later=10.0) == (False, EPOCHS)
    assert run(learns, -0.9, rng, later=10.0) == (True, 0)
    predicted = float(learns.pruner.reason.split("predicted final ")[1].split()[0])
    assert predicted > 4 * math.exp(-1.8)  # the carried model says about exp(2q)


def test_a_model_of_leading_exponents_reads_a_longer_spectrum_as_far(model):
    short = JointModel(EPOCHS, spectrum_k=3)
    z = [0.4, 0.1, -0.3, -2.0, -5.0]
    assert np.array_equal(short.features(z, [1.0], 0), short.features(z[:3], [1.0], 0))
    assert not np.array_equal(model.features(z, [1.0], 0), model.features(z[:3], [1.0], 0))


def test_the_table_of_a_shipped_file_is_checked(tmp_path, model):
    hp = JointModel(EPOCHS, use_hp=True, use_spectrum=False)
    path = tmp_path / "two.pkl"
    path.write_bytes(dumps_table({"smnist": {"spectrum": model, "hp": model}}))
    with pytest.raises(ValueError, match="no table"):   # "hp" names a model of the spectrum
        shipped(path)
    path.write_bytes(dumps_table({"smnist": {"spectrum": model}}))
    with pytest.raises(ValueError, match="no shipped joint model of smnist reads 'hp'"):
        make("joint", task="smnist", inputs="hp", model_path=str(path),
             hp_of=lambda params: np.zeros(13))
    assert hp.inputs == "hp" and model.inputs == "spectrum"


def test_a_planned_screen_stops_every_configuration_at_epoch_0_then_trains_the_best_again(
        model):
    pruner = JointPruner(model, finalists=2, then=optuna.pruners.NopPruner())
    study = optuna.create_study(pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        q = trial.suggest_float("q", -1.0, 1.0)
        # the network a seed gives: a finalist trains the one its configuration was screened as
        values = curve(q, np.random.default_rng(seed_of(trial)))
        for e, v in enumerate(values):
            trial.report(v, e)
            if e == 0:
                report_spectrum(trial, spectrum(q), 0)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return values[-1]

    study.optimize(objective, n_trials=12)
    screened = study.trials
    assert [(t.state, t.last_step) for t in screened] == [(optuna.trial.TrialState.PRUNED, 0)] * 12
    assert pruner.reason.startswith("planned screen: predicted final")
    ranked = [t.number for _, t in pruner.ranked(study)]
    by_q = [t.number for t in sorted(screened, key=lambda t: t.params["q"])]
    assert ranked[:2] == by_q[:2] and ranked[-1] in by_q[-3:]  # low q: a low final

    assert queue_finalists(study, pruner, 2) == ranked[:2]
    study.optimize(objective, n_trials=2)
    finalists = study.trials[12:]
    assert [t.state for t in finalists] == [optuna.trial.TrialState.COMPLETE] * 2
    assert [t.user_attrs[RERUN] for t in finalists] == ranked[:2]
    for t in finalists:  # the same configuration and the same untrained network, to the end
        first = study.trials[t.user_attrs[RERUN]]
        assert t.params == first.params and seed_of(t) == first.number
        assert t.intermediate_values[0] == first.intermediate_values[0]
        assert t.last_step == EPOCHS
    assert [t.number for _, t in pruner.ranked(study)] == ranked  # finalists are not ranked
    assert queue_finalists(study, pruner, 2) == []                # the two best ran
    assert queue_finalists(study, pruner, 3) == ranked[2:3]       # the third best, once
    assert queue_finalists(study, pruner, 3) == []
