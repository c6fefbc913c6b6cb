"""The anytime protocol (bench.anytime) and its predictors (bench.predictors) on a small synthetic
SMNIST-like population: known answers, no training, no recorded population."""

import gzip
import json
import math

import numpy as np
import optuna
import pytest

from bench import anytime as at
from bench import predictors as pr
from tasks.smnist import ARCHS, P_RANGES

EPOCHS = 4


def row(index: int, part: str | None = "report", state: str = "complete") -> dict:
    """Network ``index``: its loss falls towards 0.3 + q, so every epoch ranks the networks as
    the final value does; its spectrum flattens with q; 1 s per epoch, spectra 0.5 s."""
    arch = ARCHS[index % len(ARCHS)]
    lo, hi = P_RANGES[arch]
    rng = np.random.default_rng(index)
    q = float(rng.random())
    p = lo + (hi - lo) * float(rng.random())
    epochs = [] if state != "complete" else [
        {"epoch": e, "value": 0.3 + q + 2.0 / (e + 1), "seconds": 0.2 if e == 0 else 1.0,
         "spectrum_seconds": 0.5, "spectrum": [0.1 - (0.2 + q) * k for k in range(6)]}
        for e in range(EPOCHS + 1)]
    out = {"index": index, "state": state, "params": {"arch": arch, f"p_{arch}": p},
           "settings": {}, "seconds": 3.0, "epochs": epochs}
    if part is not None:
        out["part"] = part
    return out


def rows(n: int = 48) -> list[dict]:
    out = [row(i, "report" if i % 3 == 0 else "tune") for i in range(n)]
    out.append(row(n, "report", state="diverged"))
    return out


@pytest.fixture(scope="module")
def pop():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return at.prepare("smnist", rows())


def ctx_of(pop, **kw) -> at.Context:
    return at.Context("smnist", pop.epochs, pop.settings, pop.part("tune"), **kw)


class Oracle(optuna.pruners.BasePruner):
    """Knows every final value: stops at epoch 0 any network that does not end in the best
    tenth of the pool."""

    def __init__(self, finals: dict, cut: float):
        self.finals, self.cut = finals, cut

    def prune(self, study, trial):
        key = json.dumps(trial.params, sort_keys=True)
        return trial.last_step == 0 and self.finals[key] > self.cut


def test_costs_follow_the_recorded_seconds_and_parts_default_to_the_population_rule(pop):
    net = pop.part("report")[0]
    assert net.cost == [0.2, 1.0, 1.0, 1.0, 1.0] and net.spectrum_cost == [0.5] * 5
    assert pop.epochs == EPOCHS
    diverged = next(n for n in pop.nets if not n.values)
    assert not diverged.complete and diverged.final == math.inf
    assert diverged.failed_cost == 3.0  # its recorded seconds over the median epoch's
    old = at.prepare("smnist", [row(i, part=None) for i in range(20)])
    from bench.population import part_of

    assert [n.part for n in old.nets] == [part_of("smnist", i) for i in range(20)]


def test_regret_is_zero_at_the_best_one_at_the_median_and_worst_for_nothing():
    scale = (1.0, 2.0, 5.0)
    assert at.regret(1.0, scale) == 0.0
    assert at.regret(2.0, scale) == 1.0
    assert at.regret(math.inf, scale) == 4.0
    events = [(10.0, 3.0), (20.0, 1.5), (30.0, 1.0)]
    assert at.curve_at(events, [5, 10, 25, 30], scale) == [4.0, 2.0, 0.5, 0.0]
    assert at.compute_to(events, scale, 0.05) == 30.0
    assert at.compute_to(events[:2], scale, 0.05) == math.inf


def test_a_rule_that_sees_the_final_value_reaches_regret_zero_at_less_compute(pop, monkeypatch):
    pool = pop.part("report")
    finals = {json.dumps(n.params, sort_keys=True): n.final for n in pool}
    cut = float(np.quantile([n.final for n in pool if n.complete], 0.1))
    monkeypatch.setitem(at.RULES, "oracle", at.Rule(lambda c, s: Oracle(finals, cut)))
    ctx = ctx_of(pop)
    scale = at.scale_of(pool)
    budget = 40 * EPOCHS
    total = {"oracle": 0.0, "none": 0.0}
    for seed in range(5):
        reach = {}
        for rule in total:
            run = at.run_study(pool, rule, seed, budget, ctx)
            reach[rule] = at.compute_to(run["events"], scale, 0.0)
            total[rule] += reach[rule]
            assert (run["pruned"] > 0) == (rule == "oracle")
        assert reach["oracle"] <= reach["none"] < math.inf  # equal when the best comes first
    assert total["oracle"] < total["none"]


def test_a_seeded_study_is_reproducible_and_seeds_differ(pop):
    pool, ctx = pop.part("report"), ctx_of(pop)
    for rule in ("median", "max_le", "tpe_median_w1", "top_k_1epoch"):
        a = at.run_study(pool, rule, 3, 8 * EPOCHS, ctx)
        b = at.run_study(pool, rule, 3, 8 * EPOCHS, ctx)
        assert (a["events"], a["networks"], a["spent"]) == (b["events"], b["networks"],
                                                           b["spent"])
    assert (at.run_study(pool, "none", 3, 8 * EPOCHS, ctx)["networks"]
            != at.run_study(pool, "none", 4, 8 * EPOCHS, ctx)["networks"])


@pytest.mark.parametrize("rule", ["none", "median", "hyperband", "max_le", "top_k_1epoch",
                                  "tpe_median_w1"])
def test_the_budget_is_never_overrun(pop, rule):
    pool, ctx = pop.part("report"), ctx_of(pop)
    for budget in (0.5, 3.0, 7.3, 25.0, 100.0):
        run = at.run_study(pool, rule, 1, budget, ctx)
        assert run["spent"] <= budget + 1e-9
        assert all(c <= budget + 1e-9 for c, _ in run["events"])
        assert len(set(run["networks"])) == len(run["networks"])  # no network run twice


def test_only_the_report_part_is_evaluated_and_a_spectrum_rule_pays_for_its_spectra(
        pop, monkeypatch):
    pool, ctx = pop.part("report"), ctx_of(pop)
    report = {n.index for n in pool}
    for rule in ("none", "tpe_median_w1", "top_k_1epoch"):
        run = at.run_study(pool, rule, 0, 1000.0, ctx)
        assert set(run["networks"]) <= report
    monkeypatch.setitem(at.RULES, "nothing_with_spectra",
                        at.Rule(lambda c, s: optuna.pruners.NopPruner(), spectra="all"))
    monkeypatch.setitem(at.RULES, "nothing_with_first",
                        at.Rule(lambda c, s: optuna.pruners.NopPruner(), spectra="first"))
    plain = at.run_study(pool, "none", 0, 1000.0, ctx)
    every = at.run_study(pool, "nothing_with_spectra", 0, 1000.0, ctx)
    first = at.run_study(pool, "nothing_with_first", 0, 1000.0, ctx)
    trained = sum(1 for n in pool if n.values)
    assert every["spent"] == pytest.approx(plain["spent"] + trained * 5 * 0.5)
    assert first["spent"] == pytest.approx(plain["spent"] + trained * 0.5)


def test_one_epoch_top_k_keeps_the_best_by_the_first_epoch(pop):
    pool = pop.part("report")
    run = at.top_k_study(pool, 0, 1000.0, 3, EPOCHS)
    best = min(n.final for n in pool)
    assert min(f for _, f in run["events"]) == best  # epoch 1 ranks as the final does
    # two full trials' budget and a little: K shrinks to 2; three networks get their first
    # epoch (1.2 each) while 2 x 3 epochs stay reserved, and the two best of them finish
    small = at.top_k_study(pool, 0, 2 * EPOCHS + 2.4, 3, EPOCHS)
    assert len(small["networks"]) == 3 and len(small["events"]) == 2
    assert small["spent"] == pytest.approx(3 * 1.2 + 2 * 3)


def test_the_nearest_network_matches_the_architecture_first():
    space = {"arch": optuna.distributions.CategoricalDistribution(ARCHS),
             **{f"p_{a}": optuna.distributions.FloatDistribution(*r)
                for a, r in P_RANGES.items()}}
    want = {"arch": "lstm", "p_lstm": 1.0}
    assert at.distance(want, {"arch": "lstm", "p_lstm": 2.9}, space) < at.distance(
        want, {"arch": "gru", "p_gru": 1.0}, space)
    assert at.distance(want, want, space) == 0.0


def test_pretrained_models_never_see_evaluated_networks(tmp_path, monkeypatch):
    path = tmp_path / "population_smnist.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for r in rows():
            f.write(json.dumps(r) + "\n")
    seen = []
    real = at.fit_pretrained

    def spy(kind, train, epochs):
        seen.append((kind, [n.index for n in train], [n.part for n in train]))
        return real(kind, train, epochs)

    monkeypatch.setattr(at, "fit_pretrained", spy)
    out = tmp_path / "out"
    assert at.main(["smnist", "--population", str(path), "--seeds", "3", "--out", str(out),
                    "--rules", "none,median_w1,top_k_1epoch,hp_pre_e0,curve_pre",
                    "--budgets", "2,5,10"]) == 0
    result = json.loads((out / "anytime_smnist.json").read_text())
    report = set(result["pool_networks"])
    assert report == {r["index"] for r in rows() if r["part"] == "report"}
    assert {k for k, _, _ in seen} == {"hp", "curve"}
    for _, indices, parts in seen:
        assert not set(indices) & report and set(parts) == {"tune"}
    assert (out / "anytime_smnist.png").stat().st_size > 0
    text = (out / "anytime_smnist.md").read_text()
    assert "python -m bench.anytime smnist --population" in text
    assert result["rules"]["none"]["seeds"] == 3
    # choosing a rule: studies of a share of the tune part, models fitted on the rest of it
    seen.clear()
    assert at.main(["smnist", "--population", str(path), "--seeds", "2", "--out", str(out),
                    "--rules", "none,hp_pre_e0", "--budgets", "2,5", "--select"]) == 0
    chosen = json.loads((out / "anytime_smnist_select.json").read_text())
    pool, fitted = set(chosen["pool_networks"]), set(chosen["fit_networks"])
    assert pool and fitted and not pool & fitted and not (pool | fitted) & report
    assert all(set(indices) == fitted for _, indices, _ in seen)
    assert "--select" in (out / "anytime_smnist_select.md").read_text()


def test_the_features_of_the_predictors():
    x = pr.hp_features("smnist", {"arch": "gru", "p_gru": math.e}, {})
    assert x[pr.ARCHITECTURES.index("gru")] == 1.0 and x[:9].sum() == 1.0
    assert x[9] == pytest.approx(1.0) and x[10] == pytest.approx(6.0)  # log p, log2 64
    y = pr.hp_features("charrnn", {"hidden": 128, "p": 0.1, "lr": 1e-3, "dropout": 0.2})
    assert y[pr.ARCHITECTURES.index("lstm")] == 1.0 and y[11] == pytest.approx(-3.0)
    assert list(pr.curve_features([3.0, 2.0, 1.5], 1, 4)) == [3.0, 2.0, 2.0, 2.0, 2.0, 0.25]


def test_the_capacity_mlp_learns_and_a_calibrated_pruner_cuts_in_its_own_units():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    t = 1.0 + 0.5 * x[:, 0]
    from aelle.model import AeLLEConfig

    model = pr.CapacityMLP(AeLLEConfig(epochs=150)).fit(x, t)
    assert np.corrcoef(model.predict(x), t)[0, 1] > 0.9

    class Shifted:  # a carried model whose units are not the study's
        def predict(self, rows):
            return np.array([100.0 + r[0] for r in rows])

    pruner = pr.PredictorPruner(store=pr.CurveStore(2), model=Shifted(), calibrate=True,
                                n_startup_trials=4, explore=0.0, retrain_every=1)
    study = optuna.create_study(pruner=pruner)
    for v in (1.0, 2.0, 3.0, 4.0, 5.0):
        tr = study.ask()
        for e in range(3):
            tr.report(v, e)
        study.tell(tr, v)
    good, bad = study.ask(), study.ask()
    good.report(1.5, 0)
    bad.report(4.5, 0)
    assert not good.should_prune() and bad.should_prune()
    with pytest.raises(ValueError, match="carried model"):
        pr.PredictorPruner(store=pr.CurveStore(2), calibrate=True)
