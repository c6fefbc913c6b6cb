"""Pruning rules replayed on a recorded population: the real Optuna and AeLLE pruners decide on
the curves and spectra that bench.population recorded, so rules compare over many studies in
minutes instead of hours (nothing is trained).

A replayed study draws ``--trials`` networks of the population (seeded, without replacement) and
runs them in that order through an in-memory Optuna study: each epoch the recorded validation
loss is reported with its spectrum and the pruner decides (never at the last epoch, as in the
service); a pruned trial stops there. A network that diverged in the population diverges at
epoch 0 (its worker reports it; no pruner decides). The reference of each seed is the same study
with nothing pruned and AeLLE in shadow mode. The accounting (epochs, regret against the
reference's best, precision and recall of "in the better half" among the trials kept) is
bench.accounting's, the rules are bench.rules'.

This is not the headline benchmark (bench.pruning runs the service and real training): one
trial at a time, so every decision sees all earlier trials, and the population's settings
(SMNIST: hidden 64, MNIST 8k, 10 epochs). It is where a change to a rule is tried first.

Usage: python -m bench.pruning_replay smnist [--seeds 10] [--trials 48] [--epochs 10]
       [--variants none,median,aelle,...] [--tag NAME] [--out bench/results]
Writes pruning_replay_<task>.{json,md} (with --tag: pruning_replay_<task>_<tag>.*).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from aelle.pruners import ATTR, report_spectrum
from bench.accounting import evaluate, summarise
from bench.population import read
from bench.rules import RULES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = ",".join(r for r in RULES if r != "nothing")


def load(task: str) -> list[dict]:
    path = ROOT / "bench" / "results" / f"population_{task}.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run python -m bench.population {task} first")
    return read(path)


# ---- one study
def replay(pop: list[dict], rule: str, seed: int, n_trials: int, epochs: int,
           previous: list[dict] | None) -> dict:
    """The study of ``seed`` under ``rule``, as a study record of bench.pruning."""
    order = study_order(len(pop), seed, n_trials)
    pruner = RULES[rule](seed, epochs, previous)
    study = optuna.create_study(pruner=pruner)
    start = time.perf_counter()
    rows = []
    for number, i in enumerate(order):
        net = pop[int(i)]
        trial = study.ask()
        params = {"index": int(i), **net["params"]}
        row = {"number": number, "params": params, "retry_of": None, "started_at": None,
               "finished_at": f"{number:06d}", "max_le": None, "mean_le": None,
               "prediction": None, "reason": None}
        if net["state"] != "complete" or len(net["epochs"]) <= epochs:
            study.tell(trial, state=TrialState.PRUNED)
            rows.append({**row, "state": "diverged", "value": None, "last_value": None,
                         "epochs": 1})
            continue
        stopped = None
        for e in range(epochs + 1):
            rec = net["epochs"][e]
            trial.report(rec["value"], e)
            report_spectrum(trial, rec["spectrum"], e)
            if e < epochs and trial.should_prune():
                stopped = e
                break
        last = net["epochs"][e]["value"]
        if stopped is None:
            study.tell(trial, last)
        else:
            study.tell(trial, state=TrialState.PRUNED)
        attrs = study.trials[number].user_attrs
        rows.append({**row, "state": "complete" if stopped is None else "pruned",
                     "value": last if stopped is None else None, "last_value": last,
                     "epochs": e + 1, "prediction": attrs.get(f"{ATTR}prediction"),
                     "reason": attrs.get(f"{ATTR}reason"),
                     "shadow_first_prune": attrs.get(f"{ATTR}shadow_first_prune_step"),
                     "shadow_max_le": {str(k): float(np.max(net["epochs"][k]["spectrum"]))
                                       for k in range(e + 1)}})
    return {"task": None, "variant": rule, "seed": seed, "study": f"replay-{rule}-s{seed}",
            "spec": {"budget": n_trials, "epochs": epochs, "settings": {}},
            "seconds": round(time.perf_counter() - start, 1), "trials": rows}


def study_order(population: int, seed: int, n_trials: int) -> np.ndarray:
    """The networks of the study of ``seed``, in the order they are tried."""
    return np.random.default_rng(seed).choice(population, size=n_trials, replace=False)


def previous_study(pop: list[dict], seed: int, n_trials: int, epochs: int) -> list[dict]:
    """What a study that ran before the one of ``seed`` left (for the pre-trained rules): up
    to ``n_trials`` other networks of the population with their spectra up to ``epochs``, none
    of them in that study; a model that had seen the replayed networks' final losses would
    be judged on its training data."""
    taken = set(study_order(len(pop), seed, n_trials).tolist())
    others = np.array([i for i in range(len(pop)) if i not in taken])
    if not len(others):
        raise SystemExit(f"the population holds {len(pop)} networks: none is left beside a "
                         f"study of {n_trials} to pre-train on; replay fewer trials")
    order = np.random.default_rng(1000 + seed).permutation(others)[:n_trials]
    out = []
    for i in order:
        net = pop[int(i)]
        if net["state"] == "complete" and len(net["epochs"]) > epochs:
            out.append({"state": "complete", "epochs": net["epochs"][: epochs + 1],
                        "final_value": net["epochs"][epochs]["value"]})
    return out


# ---- the report
def markdown(task: str, args, table: dict, pretrained_on: list[int]) -> str:
    lines = [f"# Pruning rules replayed: {task}", "",
             f"Reproduce: `python -m bench.pruning_replay {task} --seeds {args.seeds} "
             f"--trials {args.trials} --epochs {args.epochs}"
             + (f" --variants {args.variants}" if args.variants != DEFAULT_VARIANTS else "")
             + (f" --tag {args.tag}" if args.tag else "") + "`", "",
             f"{args.seeds} studies of {args.trials} networks drawn from "
             f"`bench/results/population_{task}.jsonl`, {args.epochs} epochs each, replayed one "
             "trial at a time (see the module's docstring for how this differs from "
             "bench.pruning). Means over the studies; ± one standard error.", "",
             "| rule | epochs, % of none | regret mean / worst | best kept | precision | "
             "recall | mean stop epoch |", "|---|---|---|---|---|---|---|"]
    for v, t in table.items():
        lines.append(f"| {v} | {100 * t['epoch_share']:.0f} ± "
                     f"{100 * t['epoch_share_se']:.0f} % | {100 * t['regret']:.2f} % / "
                     f"{100 * t['worst_regret']:.2f} % | {100 * t['best_kept']:.0f} % | "
                     f"{t['precision']:.2f} | {t['recall']:.2f} | {t['stop_epoch']:.1f} |")
    lines += ["", "best kept: share of studies whose best network the rule trained to the end."]
    if pretrained_on:
        low, high = min(pretrained_on), max(pretrained_on)
        lines.append(f"aelle_pre*: the model is fitted on a previous study of "
                     f"{low if low == high else f'{low}-{high}'} completed networks of the "
                     "population, none of them in the replayed study.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", choices=("smnist", "charrnn", "signal"))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=48)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--variants", default=DEFAULT_VARIANTS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--tag", help="write pruning_replay_<task>_<tag>.* (a run of some rules "
                    "beside the full one)")
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(RULES))
    if unknown:
        ap.error(f"unknown rules {unknown}; known: {', '.join(RULES)}")
    pop = load(args.task)
    if args.trials > len(pop):
        ap.error(f"--trials {args.trials}: the population holds {len(pop)} networks")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows, pretrained_on = [], []
    for seed in range(args.seeds):
        previous = (previous_study(pop, seed, args.trials, args.epochs)
                    if any(v.startswith("aelle_pre") for v in variants) else None)
        if previous is not None:
            pretrained_on.append(len(previous))
        # the reference prunes nothing; AeLLE's shadow decisions (its fits) only for the row
        reference = replay(pop, "none" if "none" in variants else "nothing", seed, args.trials,
                           args.epochs, previous)
        for v in variants:
            run = reference if v == "none" else replay(pop, v, seed, args.trials,
                                                        args.epochs, previous)
            x = evaluate(run, reference)
            x.pop("curve")
            rows.append(x)
            print(f"seed {seed} {v}: {x['epochs']}/{x['reference_epochs']} epochs, regret "
                  f"{100 * x['regret']:.2f} %, precision {x['precision']:.2f}, recall "
                  f"{x['recall']:.2f} ({run['seconds']:.0f} s)", flush=True)
    table = summarise(rows, tuple(variants))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / (f"pruning_replay_{args.task}_{args.tag}" if args.tag
                       else f"pruning_replay_{args.task}")
    text = markdown(args.task, args, table, pretrained_on)
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(
        {"task": args.task, "seeds": args.seeds, "trials": args.trials, "epochs": args.epochs,
         "table": table, "rows": rows}, indent=1, default=float) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
