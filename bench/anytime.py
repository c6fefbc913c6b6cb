"""Pruning rules at equal compute: the anytime regret of random-search studies replayed on a
recorded population (docs/method.md, section 7).

A study draws the networks of the evaluated pool (the population's "report" part) in a seeded
random order and trains them one after another until its compute budget is spent or the pool
is used up. Each rule decides through the real Optuna pruner objects on an in-memory study
(``study.ask()``, ``trial.report``, ``aelle.pruners.report_spectrum``, ``trial.should_prune()``,
``study.tell``), one epoch at a time, never at the last epoch; a pruned trial stops there. A
network that diverged in the population fails where its record ends.

Compute, in epochs: every training epoch counts 1; the untrained network's validation (epoch 0)
and each spectrum a rule reads count their recorded seconds divided by that network's mean
seconds per training epoch (training and validation). A rule pays for the spectra it reads, and
only for those: "every epoch", "epoch 0 only" or none. A study stops before an epoch that would
overrun its budget, so the budget is never overrun. One full-trial equivalent (FTE) is
``epochs`` epochs. A diverged network with no epoch recorded costs its recorded seconds over the
population's median seconds per epoch. The pruners' own fitting time is not charged (it is
measured and reported as the replay's seconds).

Regret at a budget: the best final value among the trials trained to the end within it,
normalised as (best found - best) / (median - best), best and median over the evaluated pool
(a diverged network counts as worst); a study that trained nothing to the end has the regret of
the pool's worst finite network (in the tables; the plot is clipped at 1.5). No rule here
depends on the budget except the one-epoch top-K, so a study run to the largest budget gives
every smaller one as its prefix; top-K is run once per budget.

Rules (``RULES``): Optuna's pruners (Median with its defaults and with one warm-up step,
Percentile 25, SuccessiveHalving, Hyperband, Patient(Median)), the one-epoch top-K of Egele et
al. (train every configuration one epoch, then the K best by their epoch-1 loss to the end, K
growing with what the budget leaves), the max-LE threshold, AeLLE fitted in the study or
pre-trained, the :mod:`bench.predictors` fed the loss curve or the hyperparameters (in the
study or pre-trained), and TPE with Median pruning: TPE's suggestion is replaced by the unused
pool network nearest to it (see :func:`distance`) and the study continues with that network's
own parameters. The joint rules (``joint*``, :mod:`bench.joint`): the
:class:`aelle.pruners.JointPruner` over a joint model pre-trained on the tune part, with and
without the epoch-0 spectrum, the hyperparameters and the epoch-0 screen; the screens
(``screen_*``) are schedules like the top-K: every configuration gets epoch 0 only (its
untrained validation, and its spectrum where the model reads it, paid), then the K best by the
joint model's epoch-0 prediction are trained to the end. Pre-trained models are fitted on the
population's "tune" part, which no study
draws from; in-study models refit every ``--retrain-every`` completed trials in the calling
thread (``background=False``: deterministic, independent of the thread count).

Usage: python -m bench.anytime smnist [--population PATH] [--seeds 50]
       [--budgets 5,10,20,40,80] [--rules a,b,...] [--retrain-every 8] [--top-k 3]
       [--out bench/results] [--tag NAME] [--select] [--jobs 2]
Writes anytime_<task>.{md,json,png} (with --tag: anytime_<task>_<tag>.*; with --select, which
chooses on the tune part: ..._select.*).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from aelle.model import AeLLE, AeLLEConfig
from aelle.pruners import ByStep, TrialAttrStore, make, report_spectrum
from bench.population import part_of, read
from bench.predictors import (
    CapacityMLP,
    CurveStore,
    ParamStore,
    PredictorPruner,
    curve_features,
    hp_features,
)
from bench.rules import AELLE

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BUDGETS = (5, 10, 20, 40, 80)
TARGET = 0.05  # the regret whose compute is reported


# ---- the population
@dataclass
class Net:
    """One recorded network as the replay uses it. ``cost[e]``: epoch-equivalents of epoch
    ``e`` without its spectrum; ``spectrum_cost[e]``: of its spectrum."""

    index: int
    part: str
    task: str
    params: dict
    values: list[float]
    spectra: list[list[float] | None]
    cost: list[float]
    spectrum_cost: list[float]
    complete: bool
    final: float            # inf unless trained to the end with a finite value
    failed_cost: float = 0.0  # a network with no epoch recorded
    settings: dict = field(default_factory=dict)  # its population's task settings


@dataclass
class Population:
    task: str
    path: str
    epochs: int
    settings: dict
    nets: list[Net]

    def part(self, name: str) -> list[Net]:
        return [n for n in self.nets if n.part == name]


def default_path(task: str) -> Path:
    """The population with more networks of the two formats (gzip first on a tie)."""
    found = [p for p in (RESULTS / f"population_{task}.jsonl.gz",
                         RESULTS / f"population_{task}.jsonl") if p.exists()]
    if not found:
        raise SystemExit(f"no population of {task} in {RESULTS}: run python -m "
                         f"bench.population {task} first")
    return max(found, key=lambda p: len(read(p)))


def prepare(task: str, rows: list[dict], path: str = "") -> Population:
    """The networks of ``rows`` (``bench.population`` records); the part is the row's own or,
    in a population recorded before parts, ``bench.population.part_of`` of its index."""
    lengths = Counter(len(r["epochs"]) for r in rows if r["state"] == "complete")
    if not lengths:
        raise SystemExit(f"{path or task}: no network was trained to the end")
    epochs = lengths.most_common(1)[0][0] - 1
    settings = dict(rows[0].get("settings") or {})
    units = []
    for r in rows:
        s = [e.get("seconds") for e in r["epochs"][1:]]
        units.append(statistics.fmean(s) if s and all(x for x in s) else None)
    known = [u for u in units if u]
    pop_unit = statistics.median(known) if known else None
    nets = []
    for r, unit in zip(rows, units, strict=True):
        ep = r["epochs"]
        unit = unit or pop_unit
        cost = [(e.get("seconds", 0.0) / unit if unit else 0.0) if e["epoch"] == 0 else 1.0
                for e in ep]
        spec = [e.get("spectrum_seconds", 0.0) / unit if unit else 0.0 for e in ep]
        values = [e["value"] for e in ep]
        complete = (r["state"] == "complete" and len(ep) == epochs + 1
                    and math.isfinite(values[-1]))
        nets.append(Net(int(r["index"]), r.get("part") or part_of(task, r["index"]), task,
                        dict(r["params"]), values, [e.get("spectrum") for e in ep], cost, spec,
                        complete, values[-1] if complete else math.inf,
                        r.get("seconds", 0.0) / pop_unit if pop_unit and not ep else 0.0,
                        settings))
    return Population(task, str(path), epochs, settings, nets)


def load(task: str, path: Path | None = None) -> Population:
    path = path or default_path(task)
    return prepare(task, read(path), str(path.relative_to(ROOT) if path.is_relative_to(ROOT)
                                          else path))


# ---- what a rule is
@dataclass
class Context:
    """What rules are built from: the task, its search space, the epochs, the settings, the
    pre-trained models' training networks (never a network a study draws from)."""

    task: str
    epochs: int
    settings: dict
    train: list[Net]
    retrain_every: int = 8
    top_k: int = 3
    calibrate: bool = False  # carried models compare with their own predictions' quantile
    _models: dict = field(default_factory=dict)

    @property
    def space(self):
        from tasks.registry import get

        return get(self.task).search_space()

    def suggest(self, trial: optuna.Trial) -> dict:
        from tasks.registry import get

        return get(self.task).suggest(trial)

    def model(self, kind: str):
        """The pre-trained model of ``kind`` (aelle, curve, hp), fitted once on ``train``."""
        if kind not in self._models:
            self._models[kind] = fit_pretrained(kind, self.train, self.epochs)
        return self._models[kind]

    @property
    def reference(self) -> list[float]:
        return [n.final for n in self.train if n.complete]


def fit_pretrained(kind: str, train: list[Net], epochs: int):
    """A model fitted on the completed networks of ``train``: AeLLE on every epoch's finite
    spectrum, the curve predictor on every prefix of the curve, the hyperparameter predictor on
    one row per network (the network's own task), each row labelled with the final value."""
    done = [n for n in train if n.complete]
    if kind.startswith("joint"):
        from bench import joint

        return joint.fit(train, epochs, use_spectrum="spec" in kind, use_hp="hp" in kind)
    if kind == "aelle":
        rows = [(z, n.final) for n in done for z in n.spectra
                if z is not None and np.isfinite(z).all()]
        return AeLLE(AeLLEConfig()).fit([z for z, _ in rows], np.array([t for _, t in rows]))
    if kind == "curve":
        x = [curve_features(n.values, e, epochs) for n in done for e in range(epochs + 1)]
        t = [n.final for n in done for _ in range(epochs + 1)]
    elif kind == "hp":
        x = [hp_features(n.task, n.params, n.settings) for n in done]
        t = [n.final for n in done]
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return CapacityMLP().fit(np.stack(x), np.array(t))


@dataclass(frozen=True)
class Rule:
    """build(context, seed) -> the Optuna pruner; spectra: the epochs whose spectrum the rule
    reads and pays for ("all", "first" or "none"); sampler: "random" or "tpe"; planned: the
    one-epoch top-K, which is a schedule rather than a pruner; pretrained: the model kinds it
    carries; in_study: it fits a model in the study."""

    build: Callable[[Context, int], optuna.pruners.BasePruner] | None
    spectra: str = "none"
    sampler: str = "random"
    planned: bool = False
    screen: str = ""  # a planned rule that ranks by this pre-trained joint model at epoch 0
    pretrained: tuple[str, ...] = ()
    in_study: bool = False
    neural: bool = False  # fits a neural network in the study (the costly rules)
    baseline: bool = False
    says: str = ""


def _opts(ctx: Context, seed: int) -> dict:
    return {**AELLE, "seed": seed, "retrain_every": ctx.retrain_every}


def _aelle(ctx: Context, seed: int):
    return make("aelle", **_opts(ctx, seed), background=False)


def _aelle_pre(ctx: Context, seed: int):
    if ctx.calibrate:
        return PredictorPruner(store=TrialAttrStore(), model=ctx.model("aelle"),
                               calibrate=True, **_opts(ctx, seed))
    return make("aelle", **_opts(ctx, seed), model=ctx.model("aelle"), retrain=False,
                background=False, reference_values=ctx.reference)


def _predictor(store_of: Callable[[Context], object], kind: str, pre: bool):
    def build(ctx: Context, seed: int):
        store = store_of(ctx)
        if not pre:
            return PredictorPruner(store=store, **_opts(ctx, seed))
        if ctx.calibrate:
            return PredictorPruner(store=store, model=ctx.model(kind), calibrate=True,
                                   **_opts(ctx, seed))
        return PredictorPruner(store=store, model=ctx.model(kind),
                               reference_values=ctx.reference, **_opts(ctx, seed))
    return build


def _curve_store(ctx: Context):
    return CurveStore(ctx.epochs)


def _param_store(ctx: Context):
    return ParamStore(ctx.task, ctx.settings)


def _median1():
    return make("median", n_warmup_steps=1)


def _then_median(build):
    return lambda ctx, seed: ByStep(build(ctx, seed), then=_median1(), from_step=1)


RULES: dict[str, Rule] = {
    "none": Rule(lambda c, s: make("none"), baseline=True, says="no pruning"),
    "median": Rule(lambda c, s: make("median"), baseline=True,
                   says="Optuna MedianPruner, defaults (5 startup trials, no warm-up)"),
    "median_w1": Rule(lambda c, s: _median1(), baseline=True,
                      says="MedianPruner, n_warmup_steps=1 (never at epoch 0)"),
    "percentile25": Rule(lambda c, s: make("percentile", percentile=25.0), baseline=True,
                         says="PercentilePruner(25), its other defaults"),
    "successive_halving": Rule(lambda c, s: make("successive_halving", min_resource=1),
                               baseline=True, says="SuccessiveHalvingPruner, min_resource 1"),
    "hyperband": Rule(lambda c, s: make("hyperband", min_resource=1, max_resource=c.epochs),
                      baseline=True, says="HyperbandPruner, resources 1..epochs"),
    "patient_median": Rule(lambda c, s: make("patient", wrapped="median", patience=1),
                           baseline=True, says="PatientPruner(MedianPruner defaults), "
                           "patience 1"),
    "top_k_1epoch": Rule(None, planned=True, baseline=True,
                         says="every configuration one epoch, the K best by the epoch-1 loss "
                         "to the end (Egele et al.)"),
    "tpe_median_w1": Rule(lambda c, s: _median1(), sampler="tpe", baseline=True,
                          says="TPE (seeded) on the nearest unused network, MedianPruner "
                          "warm-up 1"),
    "max_le": Rule(lambda c, s: make("max_le", **_opts(c, s)), spectra="all", in_study=True,
                   baseline=True, says="max-LE threshold fitted in the study (best F1)"),
    "curve": Rule(_predictor(_curve_store, "curve", False), in_study=True, neural=True,
                  baseline=True,
                  says="CapacityMLP on the loss curve so far, fitted in the study, every epoch"),
    "curve_pre": Rule(_predictor(_curve_store, "curve", True), pretrained=("curve",),
                      baseline=True, says="the same, pre-trained"),
    "hp_e0": Rule(_predictor(_param_store, "hp", False), in_study=True, neural=True,
                  baseline=True,
                  says="CapacityMLP on the hyperparameters, fitted in the study, epoch 0 only"),
    "hp_pre_e0": Rule(_predictor(_param_store, "hp", True), pretrained=("hp",), baseline=True,
                      says="the same, pre-trained"),
    "hp_pre_e0_median": Rule(_then_median(_predictor(_param_store, "hp", True)),
                             pretrained=("hp",), baseline=True,
                             says="pre-trained hyperparameter predictor at epoch 0, "
                             "MedianPruner warm-up 1 after"),
    "aelle": Rule(_aelle, spectra="all", in_study=True, neural=True,
                  says="AeLLE fitted in the study, spectrum every epoch"),
    "aelle_e0": Rule(_aelle, spectra="first", in_study=True, neural=True,
                     says="AeLLE fitted in the study, spectrum at epoch 0 only"),
    "aelle_pre": Rule(_aelle_pre, spectra="all", pretrained=("aelle",),
                      says="AeLLE pre-trained, spectrum every epoch"),
    "aelle_pre_e0": Rule(_aelle_pre, spectra="first", pretrained=("aelle",),
                         says="AeLLE pre-trained, spectrum at epoch 0 only"),
    "aelle_pre_e0_median": Rule(_then_median(_aelle_pre), spectra="first",
                                pretrained=("aelle",),
                                says="AeLLE pre-trained at epoch 0, MedianPruner warm-up 1 "
                                "after"),
}


def _joint(kind: str, **options):
    """The joint pruner over the pre-trained model ``kind`` (joint_spec_hp, joint_spec,
    joint_hp, joint_curve: which features beside the loss curve it reads)."""
    then = options.pop("then", None)

    def build(ctx: Context, seed: int):
        from aelle.pruners._joint import JointPruner
        from aelle.pruners._joint_shipped import curve_pruner
        from bench.predictors import hp_features

        cache = ctx._models.setdefault("hp_of", {})

        def hp_of(p: dict):
            key = tuple(sorted(p.items()))
            if key not in cache:
                cache[key] = hp_features(ctx.task, p, ctx.settings)
            return cache[key]

        return JointPruner(ctx.model(kind), hp_of=hp_of, **options,
                           then=None if then is None else curve_pruner(then))
    return build


def _joint_rule(kind: str, says: str, **options) -> Rule:
    return Rule(_joint(kind, **options), spectra="first" if "spec" in kind else "none",
                pretrained=(kind,), says=says)


RULES.update({
    "screen_top_k": Rule(None, planned=True, screen="joint_spec_hp", spectra="first",
                         pretrained=("joint_spec_hp",),
                         says="every configuration epoch 0 only (untrained validation and "
                         "spectrum), the K best by the joint model's prediction to the end"),
    "screen_top_k_hp": Rule(None, planned=True, screen="joint_hp", pretrained=("joint_hp",),
                            says="the same without the spectrum (hyperparameters and the "
                            "epoch-0 loss; no probe paid)"),
    "screen_top_k_spec": Rule(None, planned=True, screen="joint_spec", spectra="first",
                              pretrained=("joint_spec",),
                              says="the same without the hyperparameters"),
    "screen_cascade": Rule(None, planned=True, screen="cascade0.25", spectra="first",
                           pretrained=("joint_hp", "joint_spec_hp"),
                           says="screen_top_k_hp first; only the configurations in the best "
                           "25 % of its predictions so far pay for the spectrum, and the K "
                           "best of those by the joint model go to the end"),
    "screen_cascade10": Rule(None, planned=True, screen="cascade0.1", spectra="first",
                             pretrained=("joint_hp", "joint_spec_hp"),
                             says="the same, the best 10 %"),
    "joint_rec": _joint_rule("joint_spec_hp", "joint, and at epoch 0 only a configuration "
                             "whose prediction beats every earlier one passes (records)",
                             screen_top=1e-9),
    "joint_rec_hp": _joint_rule("joint_hp", "joint_rec without the spectrum", screen_top=1e-9),
    "joint_rec_nohp": _joint_rule("joint_spec", "joint_rec without the hyperparameters (the "
                                  "shipped model's features)", screen_top=1e-9),
    "joint_s10_nohp": _joint_rule("joint_spec", "joint_s10 without the hyperparameters",
                                  screen_top=0.1),
    "joint_s10": _joint_rule("joint_spec_hp", "joint, and at epoch 0 only the best 10 % of "
                             "the epoch-0 predictions so far pass", screen_top=0.1),
    "joint_s10_hp": _joint_rule("joint_hp", "joint_s10 without the spectrum", screen_top=0.1),
    "joint": _joint_rule("joint_spec_hp", "joint predictor (epoch-0 spectrum, curve, "
                         "hyperparameters), pre-trained, prunes when its 10 % conformal lower "
                         "bound is worse than the best estimate so far; screens at epoch 0"),
    "joint_noscreen": _joint_rule("joint_spec_hp", "the same, never at epoch 0", screen=False),
    "joint_nospec": _joint_rule("joint_hp", "the same without the spectrum (curve and "
                                "hyperparameters)"),
    "joint_nohp": _joint_rule("joint_spec", "the same without the hyperparameters (spectrum "
                              "and curve)"),
    "joint_curve": _joint_rule("joint_curve", "the same on the loss curve alone"),
    "joint_k3": _joint_rule("joint_spec_hp", "joint, the 3rd best estimate as the cut", k=3),
    "joint_a05": _joint_rule("joint_spec_hp", "joint, 5 % lower bound", alpha=0.05),
    "joint_a25": _joint_rule("joint_spec_hp", "joint, 25 % lower bound", alpha=0.25),
    "joint_s10_nohp_sh": _joint_rule("joint_spec", "joint_s10_nohp at epoch 0, then "
                                     "SuccessiveHalving (min resource 1) decides",
                                     screen_top=0.1, then="successive_halving"),
    "joint_s10_nohp_median": _joint_rule("joint_spec", "joint_s10_nohp at epoch 0, then "
                                         "Median (warm-up 1) decides", screen_top=0.1,
                                         then="median"),
    "joint_nohp_sh": _joint_rule("joint_spec", "joint_nohp at epoch 0 (its lower bound "
                                 "against the best estimate), then SuccessiveHalving",
                                 then="successive_halving"),
    "joint_s10_sh": _joint_rule("joint_spec_hp", "joint_s10 at epoch 0, then "
                                "SuccessiveHalving", screen_top=0.1, then="successive_halving"),
    # a fixed step-0 cut: the best q share of the model's out-of-fold step-0 predictions on
    # the tune networks passes, from the study's first trial; "then none": the survivors
    # train to the end, as the planned screens' do
    **{f"joint_q{q:02d}{v}{t}": _joint_rule(
        kind, f"{what}, epoch 0 only: a configuration passes when its prediction is in the "
        f"best {q} % of the model's out-of-fold predictions on the tune networks; then "
        + {"": "nothing prunes", "_joint": "the joint rule"}[t],
        screen_quantile=q / 100, **({"then": "none"} if t == "" else {}))
       for q in (1, 2, 3, 5, 10, 20)
       for v, kind, what in (("_hp", "joint_hp", "hyperparameters, untrained loss"),
                             ("", "joint_spec_hp", "the same and the spectrum"),
                             ("_nohp", "joint_spec", "spectrum, untrained loss"))
       for t in ("", "_joint")},
    **{f"joint_q{q:02d}r{w}{v}": _joint_rule(
        kind, f"joint_q{q:02d}{v}, and from the {w}-th configuration on, one whose prediction "
        "beats every earlier one of the study passes too", screen_quantile=q / 100,
        screen_records=True, screen_warmup=w, then="none")
       for q in (5, 10, 20) for w in (10, 30)
       for v, kind in (("_hp", "joint_hp"), ("", "joint_spec_hp"), ("_nohp", "joint_spec"))},
    # the default's screen, learning from the study (stacked or fine-tuned on its completed
    # trials), and a cut that adapts: from the a-th configuration on, the study's own best
    # q share passes too
    **{f"joint_q10r30_hp_{learn[:5]}3": _joint_rule(
        "joint_hp", f"joint_q10r30_hp, its predictions {what} on the study's completed trials "
        "(from 3 on)", screen_quantile=0.1, screen_records=True, screen_warmup=30,
        then="none", learn=learn, stack_from=3)
       for learn, what in (("stack", "stacked (affine map)"),
                           ("finetune", "fine-tuned (30 shallow trees on the residuals)"))},
    **{f"joint_q10a{a}{v}": _joint_rule(
        kind, f"joint_q10{v}, and from the {a}-th configuration on, one in the best 10 % of "
        "the study's own step-0 predictions passes too", screen_quantile=0.1, screen_adapt=a,
        then="none") for a in (10, 30) for v, kind in (("_hp", "joint_hp"),
                                                        ("_nohp", "joint_spec"))},
    **{f"joint_q10a10_hp_{learn[:5]}3": _joint_rule(
        "joint_hp", f"joint_q10a10_hp, {what} on the study's completed trials (from 3 on)",
        screen_quantile=0.1, screen_adapt=10, then="none", learn=learn, stack_from=3)
       for learn, what in (("stack", "stacked"), ("finetune", "fine-tuned"))},
    "joint_stack": _joint_rule("joint_spec_hp", "joint, stacked on the study's completed "
                               "trials (affine map and residuals, from 8 on)", learn="stack"),
})


# ---- one study
def unit(value: float, dist) -> float:
    """Where ``value`` lies in the range of ``dist``, in [0, 1] (log scale where the
    distribution is)."""
    lo, hi = float(dist.low), float(dist.high)
    if getattr(dist, "log", False):
        value, lo, hi = math.log(value), math.log(lo), math.log(hi)
    return (float(value) - lo) / (hi - lo) if hi > lo else 0.0


def distance(a: dict, b: dict, space: dict) -> float:
    """How far parameters ``a`` are from ``b``: Euclidean over the search space's parameters,
    a numeric one in units of its range (log where the space is log), a categorical mismatch
    or a parameter only one side has counting 1 (the whole range of a numeric one)."""
    d2 = 0.0
    for name, dist in space.items():
        if (name in a) != (name in b):
            d2 += 1.0
        elif name in a:
            if isinstance(dist, CategoricalDistribution):
                d2 += float(a[name] != b[name])
            else:
                d2 += (unit(a[name], dist) - unit(b[name], dist)) ** 2
    return math.sqrt(d2)


def order_of(n: int, seed: int) -> np.ndarray:
    """The order in which a random-search study of ``seed`` draws a pool of ``n`` networks."""
    return np.random.default_rng(seed).permutation(n)


def run_study(pool: list[Net], rule_name: str, seed: int, budget: float, ctx: Context) -> dict:
    """A study of ``rule_name`` over ``pool`` with ``budget`` epochs: the trials trained to the
    end as (compute when they ended, final value), and what it spent."""
    rule = RULES[rule_name]
    if rule.planned and rule.screen:
        return screen_top_k_study(pool, seed, budget, ctx, rule.screen,
                                  pays_spectrum=rule.spectra != "none")
    if rule.planned:
        return top_k_study(pool, seed, budget, ctx.top_k, ctx.epochs)
    start = time.perf_counter()
    sampler = (optuna.samplers.TPESampler(seed=seed) if rule.sampler == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    study = optuna.create_study(sampler=sampler, pruner=rule.build(ctx, seed))
    order = iter(order_of(len(pool), seed).tolist())
    space = ctx.space if rule.sampler == "tpe" else None
    unused = set(range(len(pool)))
    spent, events, pruned, trials, nearest, ran = 0.0, [], 0, 0, [], []
    out_of_budget = False
    while unused and not out_of_budget:
        if rule.sampler == "tpe":
            probe = study.ask()
            wanted = ctx.suggest(probe)
            study.tell(probe, state=TrialState.FAIL)  # TPE learns from the network run instead
            i = min(sorted(unused), key=lambda j: distance(wanted, pool[j].params, space))
            nearest.append(distance(wanted, pool[i].params, space))
        else:
            i = next(order)
        unused.discard(i)
        net = pool[i]
        ran.append(net.index)
        study.enqueue_trial(net.params)
        trial = study.ask()
        ctx.suggest(trial)  # the trial holds the network's own parameters
        trials += 1
        if not net.values:
            if spent + net.failed_cost > budget:
                out_of_budget = True
            else:
                spent += net.failed_cost
            study.tell(trial, state=TrialState.FAIL)
            continue
        state = None
        for e, value in enumerate(net.values):
            reads = rule.spectra == "all" or (rule.spectra == "first" and e == 0)
            c = net.cost[e] + (net.spectrum_cost[e] if reads else 0.0)
            if spent + c > budget:
                out_of_budget, state = True, TrialState.FAIL
                break
            spent += c
            trial.report(value, e)
            if reads and net.spectra[e] is not None:
                report_spectrum(trial, net.spectra[e], e)
            if e < ctx.epochs and trial.should_prune():
                state = TrialState.PRUNED
                pruned += 1
                break
        if state is None and net.complete:
            study.tell(trial, net.final)
            events.append((spent, net.final))
        else:
            study.tell(trial, state=state or TrialState.FAIL)
    return {"events": events, "spent": spent, "trials": trials, "pruned": pruned,
            "exhausted": not unused and not out_of_budget, "nearest": nearest,
            "networks": ran, "seconds": time.perf_counter() - start}


def top_k_study(pool: list[Net], seed: int, budget: float, k: int, epochs: int) -> dict:
    """The one-epoch top-K under ``budget`` epochs: networks in the study's random order get
    epoch 0 and epoch 1 while the rest of the budget still pays for K of them to finish; then
    the best by their epoch-1 loss are trained to the end, K or as many more as the budget left
    pays for, best first."""
    start = time.perf_counter()
    rest = epochs - 1  # what finishing a network after its first epoch costs
    k = max(1, min(k, int(budget // epochs)))
    spent, first, ran = 0.0, [], []
    for i in order_of(len(pool), seed).tolist():
        net = pool[i]
        c = sum(net.cost[:2]) if net.values else net.failed_cost
        if spent + c + k * rest > budget:
            break
        spent += c
        ran.append(net.index)
        if len(net.values) > 1 and math.isfinite(net.values[1]):
            first.append(net)
    first.sort(key=lambda n: n.values[1])
    return finish_best(first, 2, k, rest, spent, budget, ran, start)


def finish_best(ranked: list[Net], from_epoch: int, k: int, rest: float, spent: float,
                budget: float, ran: list[int], start: float) -> dict:
    """The end of a planned study: the networks of ``ranked`` (best first) trained on from
    epoch ``from_epoch`` to the end, K or as many more as the budget left pays for at ``rest``
    epochs each, until the budget is spent."""
    n_more = min(len(ranked), max(k, int((budget - spent) // rest) if rest else len(ranked)))
    events = []
    for net in ranked[:n_more]:
        c = sum(net.cost[from_epoch:])
        if spent + c > budget:
            break
        spent += c
        if net.complete:
            events.append((spent, net.final))
    return {"events": events, "spent": spent, "trials": len(ranked), "pruned":
            len(ranked) - len(events), "exhausted": False, "nearest": [], "networks": ran,
            "seconds": time.perf_counter() - start}


def screen_top_k_study(pool: list[Net], seed: int, budget: float, ctx: Context, kind: str,
                       pays_spectrum: bool) -> dict:
    """The zero-cost screen as a schedule: networks in the study's random order get epoch 0
    only (the untrained network's validation and, if the model reads it, its spectrum) while
    the rest of the budget still pays for K of them to finish; then the best by the joint
    model's step-0 prediction are trained to the end, K or as many more as the budget pays
    for, best first."""
    from bench.joint import hp_of

    start = time.perf_counter()
    cascade = kind.startswith("cascade")
    if cascade:  # "cascade<q>": the spectrum only for the best q of the hyperparameter ranks
        share, cheap, kind = float(kind[len("cascade"):]), ctx.model("joint_hp"), \
            "joint_spec_hp"
        seen: list[float] = []
    model = ctx.model(kind)
    rest = ctx.epochs
    k = max(1, min(ctx.top_k, int(budget // (ctx.epochs + 1))))
    spent, first, ran = 0.0, [], []
    for i in order_of(len(pool), seed).tolist():
        net = pool[i]
        probe = pays_spectrum
        if cascade and net.values:
            hkey = ("joint_hp", net.task, net.index)
            if hkey not in ctx._models:
                ctx._models[hkey] = float(cheap.predict(cheap.features(
                    None, net.values, 0, hp_of(net)))[0])
            seen.append(ctx._models[hkey])
            probe = np.mean(np.array(seen) < seen[-1]) < share
        c = (net.cost[0] + (net.spectrum_cost[0] if probe else 0.0) if net.values
             else net.failed_cost)
        if spent + c + k * rest > budget:
            break
        spent += c
        ran.append(net.index)
        if net.values and (probe or not cascade):
            key = (kind, net.task, net.index)
            if key not in ctx._models:
                row = model.features(net.spectra[0], net.values, 0,
                                     hp_of(net) if model.use_hp else None)
                ctx._models[key] = float(model.predict(row)[0])
            first.append((ctx._models[key], net))
    first.sort(key=lambda p: p[0])
    return finish_best([net for _, net in first], 1, k, rest, spent, budget, ran, start)


# ---- regret
def scale_of(pool: list[Net]) -> tuple[float, float, float]:
    """(best, median, worst finite) final value over ``pool`` (diverged: worst)."""
    finals = np.array([n.final for n in pool])
    finite = finals[np.isfinite(finals)]
    return float(finite.min()), float(np.median(finals)), float(finite.max())


def regret(best_found: float, scale: tuple[float, float, float]) -> float:
    best, median, worst = scale
    found = best_found if math.isfinite(best_found) else worst
    return (found - best) / (median - best) if median > best else 0.0


def curve_at(events, budgets_epochs, scale) -> list[float]:
    """Regret at each budget (epochs), from a study's (compute, final) events."""
    out = []
    for b in budgets_epochs:
        finals = [f for c, f in events if c <= b + 1e-9]
        out.append(regret(min(finals) if finals else math.inf, scale))
    return out


def compute_to(events, scale, target: float = TARGET) -> float:
    """The compute (epochs) at which the study's best first reaches regret <= target (inf if
    it never does)."""
    best = math.inf
    for c, f in sorted(events):
        best = min(best, f)
        if regret(best, scale) <= target:
            return c
    return math.inf


def fine_grid(budgets: tuple) -> np.ndarray:
    """FTE budgets for the compute-to-target figures and the plot: ``budgets`` and a
    geometric grid from 0.5 to the largest."""
    return np.unique(np.round(np.concatenate([np.geomspace(0.5, max(budgets), 64),
                                              np.array(budgets, dtype=float)]), 3))


# ---- the experiment
def evaluate(pool: list[Net], rules: list[str], seeds: range, budgets: tuple, ctx: Context,
             log=print, neural_seeds: range | None = None) -> dict:
    """Every rule over every seed on ``pool`` (the rules that fit a neural network in the
    study over ``neural_seeds``, the first seeds, when given): the regret at ``budgets`` (FTE)
    and on the fine grid, the compute to regret <= TARGET, spend and timing."""
    scale = scale_of(pool)
    E = ctx.epochs
    top = max(budgets)
    grid = fine_grid(budgets)
    out = {}
    for name in rules:
        rule = RULES[name]
        for kind in rule.pretrained:
            ctx.model(kind)
        rows = []
        for seed in (neural_seeds if rule.neural and neural_seeds is not None else seeds):
            if rule.planned:
                runs = [run_study(pool, name, seed, g * E, ctx) for g in grid]
                fine = [curve_at(r["events"], [g * E], scale)[0] for r, g in zip(runs, grid,
                                                                                 strict=True)]
                at = [fine[int(np.flatnonzero(grid == b)[0])] for b in budgets]
                reach = next((g * E for g, r in zip(grid, fine, strict=True) if r <= TARGET),
                             math.inf)
                run = runs[-1]
                run["seconds"] = sum(r["seconds"] for r in runs)
            else:
                run = run_study(pool, name, seed, top * E, ctx)
                at = curve_at(run["events"], [b * E for b in budgets], scale)
                fine = curve_at(run["events"], grid * E, scale)
                reach = compute_to(run["events"], scale)
            rows.append({"seed": seed, "regret": at, "fine": fine, "reach_fte": reach / E,
                         "spent_fte": run["spent"] / E, "trials": run["trials"],
                         "pruned": run["pruned"], "completed": len(run["events"]),
                         "exhausted": run["exhausted"], "seconds": run["seconds"],
                         "nearest": (float(np.mean(run["nearest"])) if run["nearest"]
                                     else None)})
        out[name] = summary(rows, budgets, grid)
        t = out[name]
        log(f"{name}: regret at {budgets[0]} FTE {t['mean'][0]:.3f}, at {budgets[-1]} FTE "
            f"{t['mean'][-1]:.3f}; to {TARGET}: {t['crossing_fte']} FTE "
            f"({t['seconds_per_seed']:.1f} s per seed)")
    return {"scale": dict(zip(("best", "median", "worst"), scale, strict=True)),
            "grid_fte": grid.tolist(), "rules": out}


def summary(rows: list[dict], budgets: tuple, grid: np.ndarray) -> dict:
    reg = np.array([r["regret"] for r in rows])
    fine = np.array([r["fine"] for r in rows])
    n = len(rows)
    se = reg.std(0, ddof=1) / math.sqrt(n) if n > 1 else np.full(len(budgets), math.nan)
    fine_mean = fine.mean(0)
    crossing = next((float(g) for g, m in zip(grid, fine_mean, strict=True) if m <= TARGET),
                    None)
    reach = np.array([r["reach_fte"] for r in rows])
    return {"seeds": n, "budgets_fte": list(budgets), "mean": reg.mean(0).tolist(),
            "se": se.tolist(), "fine_mean": fine_mean.tolist(),
            "fine_se": (fine.std(0, ddof=1) / math.sqrt(n) if n > 1
                        else np.full(len(grid), math.nan)).tolist(),
            "crossing_fte": crossing,
            "reach_median_fte": float(np.median(reach)),
            "reached": float(np.isfinite(reach).mean()),
            "spent_fte": float(np.mean([r["spent_fte"] for r in rows])),
            "trials": float(np.mean([r["trials"] for r in rows])),
            "pruned": float(np.mean([r["pruned"] for r in rows])),
            "completed": float(np.mean([r["completed"] for r in rows])),
            "exhausted": float(np.mean([r["exhausted"] for r in rows])),
            "seconds_per_seed": float(np.mean([r["seconds"] for r in rows])),
            "nearest_mean": (float(np.mean([r["nearest"] for r in rows]))
                             if rows[0]["nearest"] is not None else None),
            "per_seed": [{k: r[k] for k in ("seed", "regret", "reach_fte", "spent_fte",
                                            "completed", "pruned")} for r in rows]}


def ratios(table: dict) -> dict:
    """crossing(rule) / crossing(baseline) for every pair (None where either never crosses)."""
    out = {}
    for r, t in table.items():
        out[r] = {}
        for b, u in table.items():
            if RULES[b].baseline and b != r:
                a, c = t["crossing_fte"], u["crossing_fte"]
                out[r][b] = a / c if a is not None and c is not None else None
    return out


# ---- the report
def fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def regret_table(table: dict, budgets: tuple) -> list[str]:
    lines = ["| rule | " + " | ".join(f"{b} FTE" for b in budgets)
             + f" | mean curve ≤ {TARGET} at (FTE) | per-seed median to ≤ {TARGET} (FTE) | "
             "seeds reaching it | trials / pruned / completed |",
             "|---|" + "---|" * (len(budgets) + 4)]
    for r, t in table.items():
        cells = [f"{m:.3f} ± {s:.3f}" for m, s in zip(t["mean"], t["se"], strict=True)]
        lines.append(f"| {r} | " + " | ".join(cells)
                     + f" | {fmt(t['crossing_fte'], 1)} | {fmt(t['reach_median_fte'], 1)} | "
                     f"{100 * t['reached']:.0f} % | {t['trials']:.0f} / {t['pruned']:.0f} / "
                     f"{t['completed']:.0f} |")
    return lines


def ratio_table(table: dict) -> list[str]:
    base = [b for b in table if RULES[b].baseline]
    lines = ["| rule | " + " | ".join(base) + " |", "|---|" + "---|" * len(base)]
    rat = ratios(table)
    for r in table:
        lines.append(f"| {r} | " + " | ".join("" if b == r else fmt(rat[r].get(b), 2)
                                               for b in base) + " |")
    return lines


def rule_lines(rules) -> list[str]:
    return [f"- `{r}`: {RULES[r].says}" + {"all": "; reads the spectrum every epoch",
                                           "first": "; reads the spectrum at epoch 0"}.get(
        RULES[r].spectra, "") for r in rules]


def plot(path: Path, table: dict, grid: list[float], title: str,
         budgets: tuple = BUDGETS) -> None:
    """Mean regret against compute with ± one standard error bands, baselines and the
    spectrum rules in two panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("baselines", [r for r in table if RULES[r].baseline]),
              ("spectrum rules (none and median_w1 for reference)",
               [r for r in table if not RULES[r].baseline or r in ("none", "median_w1")])]
    groups = [(g, rs) for g, rs in groups if rs]
    fig, axes = plt.subplots(1, len(groups), figsize=(7 * len(groups), 5), sharey=True,
                             squeeze=False)
    x = np.asarray(grid)
    for ax in axes[0]:  # more rules than the default ten colours
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    for ax, (name, rs) in zip(axes[0], groups, strict=True):
        for r in rs:
            m, s = np.asarray(table[r]["fine_mean"]), np.asarray(table[r]["fine_se"])
            (line,) = ax.plot(x, m, label=r, lw=1.4)
            ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.18, lw=0)
        ax.axhline(TARGET, color="k", ls=":", lw=0.8)
        # before a study's first completed trial its regret is the worst network's, which
        # can be orders of magnitude off this scale
        ax.set_ylim(-0.02, 1.5)
        ax.set_xscale("log")
        ax.set_xticks(list(budgets), [str(b) for b in budgets])
        ax.set_xlabel("compute (full-trial equivalents, spectra included)")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7, ncol=2)
    axes[0][0].set_ylabel("normalised regret (mean ± SE), clipped at 1.5")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def command_line(task: str, args) -> str:
    parts = [f"python -m bench.anytime {task}", f"--population {args.population}",
             f"--seeds {args.seeds}", f"--budgets {','.join(map(str, args.budgets))}",
             f"--retrain-every {args.retrain_every}", f"--top-k {args.top_k}"]
    if args.in_study_seeds != args.seeds:
        parts.append(f"--in-study-seeds {args.in_study_seeds}")
    if args.rules != ",".join(RULES):
        parts.append(f"--rules {args.rules}")
    if args.tag:
        parts.append(f"--tag {args.tag}")
    if args.select:
        parts.append("--select")
    return " ".join(parts)


# the studies' pool and the pre-trained models' networks: reporting, or choosing a rule
POOLS = {False: ("report part", "tune part"),
         True: ("select share of the tune part (bench.population.select_part)",
                "rest of the tune part")}


def pools(pop: Population, select: bool) -> tuple[list[Net], list[Net]]:
    """(the networks studies draw from, those pre-trained models are fitted on). ``select``:
    both inside the tune part, so that a rule chosen on them has never seen the report part."""
    from bench.population import select_part

    if not select:
        return pop.part("report"), pop.part("tune")
    tune = pop.part("tune")
    return ([n for n in tune if select_part(n.task, n.index) == "select"],
            [n for n in tune if select_part(n.task, n.index) == "fit"])


def markdown(pop: Population, pool, train, args, result: dict, command: str,
             seconds: float) -> str:
    table = result["rules"]
    s = result["scale"]
    others = ", ".join(f"{k} {v}" for k, v in AELLE.items() if k != "retrain_every")
    neural = [r for r in table if RULES[r].neural and table[r]["seeds"] != args.seeds]
    lines = [f"# Pruning rules at equal compute: {pop.task}", "",
             f"Reproduce: `{command}`", "",
             f"Population `{pop.path}`: {len(pop.nets)} networks, {pop.epochs} epochs each. "
             f"Studies draw from the {POOLS[args.select][0]} ({len(pool)} networks, "
             f"{sum(not n.complete for n in pool)} of them not trained to the end in the "
             f"recording); pre-trained models are fitted on the {POOLS[args.select][1]} "
             f"({len(train)} networks, {sum(n.complete for n in train)} complete), which no "
             "study draws from. "
             f"{args.seeds} seeds (studies) per rule, each with a budget of up to "
             f"{max(args.budgets)} full-trial equivalents (FTE, {pop.epochs} epochs each); a "
             "study that uses up the pool stops there. How compute, the studies and regret are "
             "defined: the docstring of `bench/anytime.py`.", "",
             f"Regret scale over the {POOLS[args.select][0]}: best final {s['best']:.4f}, median "
             f"{s['median']:.4f}. In-study models refit every {args.retrain_every} completed "
             f"trials, in the calling thread (`background=False`); AeLLE's other settings are "
             f"bench.rules' ({others}). "
             + (f"The rules that fit a neural network in the study ({', '.join(neural)}) run "
                f"on the first {args.in_study_seeds} seeds only (their cost per seed is in the "
                "last table). " if neural else "") +
             f"One-epoch top-K: K = {args.top_k}. TPE: the suggestion is replaced by the "
             "nearest unused network (Euclidean over the search space, a numeric parameter in "
             "units of its range, log where the space is log; a categorical mismatch or a "
             "parameter only one side has counts 1).", "",
             "## Normalised regret (mean ± standard error over seeds)", "",
             *regret_table(table, tuple(args.budgets)), "",
             f"mean curve ≤ {TARGET} at: the smallest compute on the plot's grid at which the "
             f"mean regret is ≤ {TARGET}. Per-seed median: the compute at which each study's "
             f"best first reaches ≤ {TARGET} (\"-\" when fewer than half do within "
             f"{max(args.budgets)} FTE).", "",
             f"## Compute to mean regret ≤ {TARGET}, as a ratio to each baseline's", "",
             "Row rule / column baseline, from the \"mean curve\" column.", "",
             *ratio_table(table), "",
             "## Rules", "", *rule_lines(table), "",
             "## Cost of the replay", "",
             "| rule | seeds | seconds per seed | mean compute spent (FTE) | studies that used "
             "up the pool |", "|---|---|---|---|---|"]
    for r, t in table.items():
        lines.append(f"| {r} | {t['seeds']} | {t['seconds_per_seed']:.2f} | "
                     f"{t['spent_fte']:.1f} | {100 * t['exhausted']:.0f} % |")
    if "tpe_median_w1" in table and table["tpe_median_w1"]["nearest_mean"] is not None:
        lines += ["", f"TPE: mean distance from a suggestion to the network run "
                      f"{table['tpe_median_w1']['nearest_mean']:.3f}."]
    lines += ["", f"Whole run: {seconds:.0f} s on one torch thread (pre-trained fits "
                  "included)."]
    return "\n".join(lines) + "\n"


def _evaluate_one(job) -> dict:
    pool, rule, args, ctx, neural = job
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return evaluate(pool, [rule], range(args.seeds), tuple(args.budgets), ctx,
                    neural_seeds=neural)


def parse_budgets(text: str) -> tuple[float, ...]:
    values = tuple(float(x) if "." in x else int(x) for x in text.split(",") if x.strip())
    if not values or any(v <= 0 for v in values) or list(values) != sorted(values):
        raise argparse.ArgumentTypeError(f"expected increasing positive budgets, got {text!r}")
    return values


def parse_rules(text: str) -> list[str]:
    names = [r.strip() for r in text.split(",") if r.strip()]
    unknown = sorted(set(names) - set(RULES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown rules {unknown}; known: {', '.join(RULES)}")
    return names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", choices=("smnist", "charrnn", "signal"))
    ap.add_argument("--population", type=Path, help="a bench.population file (default: the "
                    "one of the two formats with more networks)")
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--budgets", type=parse_budgets, default=BUDGETS,
                    help="FTE budgets reported, comma-separated")
    ap.add_argument("--rules", default=",".join(RULES))
    ap.add_argument("--retrain-every", type=int, default=8)
    ap.add_argument("--in-study-seeds", type=int, help="seeds for the rules that fit a neural "
                    "network in the study (default: --seeds)")
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--tag")
    ap.add_argument("--select", action="store_true", help="choose, not report: studies of a "
                    "share of the tune part, models fitted on the rest (the report part is "
                    "not read); writes anytime_<task>[_<tag>]_select.*")
    ap.add_argument("--jobs", type=int, default=1, help="rules evaluated in this many "
                    "processes at once (each on one torch thread)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1, got {args.jobs}")
    rules = parse_rules(args.rules)
    if args.in_study_seeds is None:
        args.in_study_seeds = args.seeds
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    pop = load(args.task, args.population)
    args.population = pop.path
    pool, train = pools(pop, args.select)
    if not pool:
        raise SystemExit(f"{pop.path}: no network in the {POOLS[args.select][0]}")
    ctx = Context(args.task, pop.epochs, pop.settings, train, args.retrain_every, args.top_k)
    neural = range(min(args.in_study_seeds, args.seeds))
    if args.jobs > 1:  # a rule per process, each on one thread: the figures do not change
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs) as ex:
            parts = list(ex.map(_evaluate_one, [(pool, r, args, ctx, neural) for r in rules]))
        result = {**parts[0], "rules": {r: p["rules"][r] for r, p in zip(rules, parts,
                                                                          strict=True)}}
    else:
        result = evaluate(pool, rules, range(args.seeds), tuple(args.budgets), ctx,
                          neural_seeds=neural)
    seconds = time.perf_counter() - start
    command = command_line(args.task, args)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / "_".join(["anytime", args.task] + ([args.tag] if args.tag else [])
                               + (["select"] if args.select else []))
    stem.with_suffix(".md").write_text(markdown(pop, pool, train, args, result, command,
                                                seconds))
    stem.with_suffix(".json").write_text(json.dumps(
        {"command": command, "task": args.task, "population": pop.path, "epochs": pop.epochs,
         "seeds": args.seeds, "budgets_fte": list(args.budgets), "target": TARGET,
         "select": args.select, "pool_networks": [n.index for n in pool],
         "fit_networks": [n.index for n in train],
         "retrain_every": args.retrain_every, "top_k": args.top_k, "seconds": seconds,
         "in_study_seeds": args.in_study_seeds,
         "rules_described": {r: RULES[r].says for r in rules}, "ratios": ratios(
             result["rules"]), **result}, indent=1, default=float) + "\n")
    plot(stem.with_suffix(".png"), result["rules"], result["grid_fte"],
         f"{args.task}: {len(pool)} report networks, {args.seeds} seeds",
         tuple(args.budgets))
    print(stem.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
