"""Pre-trained pruning rules carried to networks their models never saw: the anytime protocol
of ``bench.anytime`` on studies of one group of networks, the models fitted on another.

Splits:

- ``smnist:<arch>``: models fitted on the SMNIST tune part of the seven other architectures;
  studies of the report part of ``<arch>``;
- ``charrnn:<sizes>-><sizes>``: models fitted on the CharRNN tune part of some hidden sizes
  (the smaller half of the sizes present, then the larger half); studies of the report part
  of the others;
- ``smnist->charrnn``, ``smnist->signal``: models fitted on the whole SMNIST tune part;
  studies of the other task's report part. The losses of two tasks are in different units, so
  a carried model's prediction is compared with the median of its own predictions for the
  study's completed trials (``bench.predictors.PredictorPruner`` with ``calibrate``), after
  the same start-up, instead of with their final values.

Within a task a carried model's cut also counts the final values of its training networks
(``reference_values``), as the anytime rules' pre-trained models do. The hyperparameter
predictor is fitted on the same networks as AeLLE and the curve predictor (its features,
``bench.predictors.hp_features``, are shared by the tasks). The evaluated networks are never
in a model's training set (a split's source and target are disjoint by architecture, size or
task, and sources are tune parts, targets report parts). The rules that fit nothing (none,
median_w1, the one-epoch top-K) are there for scale.

Usage: python -m bench.transfer [--seeds 50] [--budgets 1,2,3,5,10] [--splits all]
       [--rules RULE,...] [--tasks smnist,charrnn,signal] [--smnist PATH] [--charrnn PATH]
       [--signal PATH] [--out bench/results]
Writes transfer.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

from bench import anytime as at

RULES = ("none", "median_w1", "top_k_1epoch", "aelle_pre", "aelle_pre_e0",
         "aelle_pre_e0_median", "hp_pre_e0", "hp_pre_e0_median", "curve_pre",
         # the joint model on the same source networks, with and without each input
         "joint_curve", "joint_nohp", "joint_nospec", "screen_top_k_spec", "screen_top_k_hp")
BUDGETS = (1, 2, 3, 5, 10)


@dataclass
class Split:
    name: str
    group: str
    source: list[at.Net]
    target: list[at.Net]
    target_pop: at.Population
    calibrate: bool

    def describe(self) -> str:
        return (f"{len(self.source)} source networks ({sum(n.complete for n in self.source)} "
                f"complete), {len(self.target)} target networks")


def splits(pops: dict[str, at.Population], which: str = "all") -> list[Split]:
    """Every split the populations at hand allow (see the module docstring)."""
    out = []
    sm = pops.get("smnist")
    if sm is not None:
        archs = sorted({n.params["arch"] for n in sm.nets})
        for a in archs:
            source = [n for n in sm.part("tune") if n.params["arch"] != a]
            target = [n for n in sm.part("report") if n.params["arch"] == a]
            out.append(Split(f"smnist:{a}", "smnist, leave one architecture out", source,
                             target, sm, False))
    ch = pops.get("charrnn")
    if ch is not None:
        sizes = sorted({n.params["hidden"] for n in ch.nets})
        half = len(sizes) // 2
        for src, dst in ((sizes[:half], sizes[half:]), (sizes[half:], sizes[:half])):
            if not src or not dst:
                continue
            name = f"charrnn:{','.join(map(str, src))}->{','.join(map(str, dst))}"
            out.append(Split(name, "charrnn, hidden sizes",
                             [n for n in ch.part("tune") if n.params["hidden"] in src],
                             [n for n in ch.part("report") if n.params["hidden"] in dst],
                             ch, False))
    if sm is not None:
        for task in ("charrnn", "signal"):
            if task in pops:
                out.append(Split(f"smnist->{task}", "smnist to another task", sm.part("tune"),
                                 pops[task].part("report"), pops[task], True))
    if which != "all":
        wanted = [w.strip() for w in which.split(",")]
        out = [s for s in out if any(s.name == w or s.name.startswith(w) for w in wanted)]
    return [s for s in out if s.target and any(n.complete for n in s.source)]


CURVE_INPUT = ("curve_pre", "joint_curve", "joint_nohp", "joint_nospec", "screen_top_k_spec",
               "screen_top_k_hp")  # models whose input holds the loss curve at every epoch


def rules_for(split: Split, rules: tuple[str, ...] = RULES) -> list[str]:
    """The transfer rules; those whose model reads the loss curve only where source and target
    record the same number of epochs (its input has that length)."""
    same = {len(n.values) for n in split.source if n.complete} == {split.target_pop.epochs + 1}
    # a joint pruner compares its predictions with the study's final values, which another
    # task gives in other units; its screens only rank the predictions, and stay
    return [r for r in rules if (r not in CURVE_INPUT or same)
            and not (split.calibrate and r.startswith("joint_"))]


def run(split: Split, seeds: range, budgets: tuple, retrain_every: int, top_k: int,
        rules: tuple[str, ...] = RULES) -> dict:
    pop = split.target_pop
    ctx = at.Context(pop.task, pop.epochs, pop.settings, split.source, retrain_every, top_k,
                     calibrate=split.calibrate)
    start = time.perf_counter()
    result = at.evaluate(split.target, rules_for(split, rules), seeds, budgets, ctx,
                         log=lambda s: print(f"{split.name} {s}", flush=True))
    return {"name": split.name, "group": split.group, "calibrate": split.calibrate,
            "population": pop.path, "source_networks": [[n.task, n.index] for n in split.source],
            "target_networks": [n.index for n in split.target],
            "described": split.describe(), "seconds": time.perf_counter() - start, **result}


def pooled(results: list[dict], budgets: tuple, order: tuple[str, ...] = RULES) -> dict:
    """Per group and rule, the mean over its splits of the mean regret at each budget, and the
    mean of their standard errors' squares' root over the splits (splits are independent)."""
    out: dict[str, dict] = {}
    for group in dict.fromkeys(r["group"] for r in results):
        rs = [r for r in results if r["group"] == group]
        rules = [x for x in order if all(x in r["rules"] for r in rs)]
        out[group] = {}
        for x in rules:
            m = np.array([r["rules"][x]["mean"] for r in rs])
            s = np.array([r["rules"][x]["se"] for r in rs])
            fm = np.array([r["rules"][x]["fine_mean"] for r in rs])
            out[group][x] = {"splits": len(rs), "mean": m.mean(0).tolist(),
                             "se": (np.sqrt((s ** 2).sum(0)) / len(rs)).tolist(),
                             "fine_mean": fm.mean(0).tolist()}
    return out


def markdown(results: list[dict], groups: dict, args, command: str, seconds: float) -> str:
    b = tuple(args.budgets)
    lines = ["# Pre-trained pruning rules on networks their models never saw", "",
             f"Reproduce: `{command}`", "",
             "Splits, studies and rules: the docstring of `bench/transfer.py`; compute and "
             "regret as in `bench/anytime.py` (random-search studies of the target networks, "
             "normalised regret over the target networks, compute in full-trial equivalents "
             f"with the spectra a rule reads). {args.seeds} seeds per rule and split. "
             f"Pre-trained models hold their fit (no refit in the study); a calibrated model "
             f"re-draws its cut every {args.retrain_every} completed trials.", "",
             "## Per group: mean over its splits of the mean normalised regret", ""]
    for group, table in groups.items():
        if not table:  # every rule asked for is one that this group's splits leave out
            lines += [f"### {group}", "", "No rule asked for applies here (the joint rules "
                      "are left out of the cross-task splits).", ""]
            continue
        n = next(iter(table.values()))["splits"]
        lines += [f"### {group} ({n} split{'s' if n > 1 else ''})", "",
                  "| rule | " + " | ".join(f"{x} FTE" for x in b) + " |",
                  "|---|" + "---|" * len(b)]
        for r, t in table.items():
            lines.append(f"| {r} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in
                                                  zip(t["mean"], t["se"], strict=True)) + " |")
        lines.append("")
    lines += ["## Per split", ""]
    for res in results:
        s = res["scale"]
        lines += [f"### {res['name']}", "",
                  f"{res['described']}; regret scale: best {s['best']:.4f}, median "
                  f"{s['median']:.4f}" + ("; calibrated cut" if res["calibrate"] else "")
                  + ".", "", *at.regret_table(res["rules"], b), ""]
    lines += ["## Rules", "", *at.rule_lines(args.rules), "",
              f"Whole run: {seconds:.0f} s on one torch thread."]
    return "\n".join(lines) + "\n"


def plot(path: Path, groups: dict, grid: list[float], budgets: tuple) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.5), sharey=True,
                             squeeze=False)
    x = np.asarray(grid)
    for ax in axes[0]:  # more rules than the default ten colours
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    for ax, (group, table) in zip(axes[0], groups.items(), strict=True):
        for r, t in table.items():
            (line,) = ax.plot(x, t["fine_mean"], label=r, lw=1.3)
            # bands: the budgets' pooled standard errors, drawn between the budgets
            ax.fill_between(list(budgets), np.array(t["mean"]) - np.array(t["se"]),
                            np.array(t["mean"]) + np.array(t["se"]),
                            color=line.get_color(), alpha=0.15, lw=0)
        ax.axhline(at.TARGET, color="k", ls=":", lw=0.8)
        # before a study's first completed trial its regret is the worst network's, which
        # can be orders of magnitude off this scale
        ax.set_ylim(-0.02, 1.5)
        ax.set_xscale("log")
        ax.set_xticks(list(budgets), [str(v) for v in budgets])
        ax.set_title(group, fontsize=10)
        ax.set_xlabel("compute (full-trial equivalents)")
        if table:
            ax.legend(fontsize=7)
    axes[0][0].set_ylabel("normalised regret (mean ± SE), clipped at 1.5")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--budgets", type=at.parse_budgets, default=BUDGETS)
    ap.add_argument("--splits", default="all", help="split names or prefixes, comma-separated")
    ap.add_argument("--retrain-every", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--rules", type=lambda v: tuple(r.strip() for r in v.split(",") if r.strip()),
                    default=RULES, help="rules to run, comma-separated (default: all of RULES)")
    for task in ("smnist", "charrnn", "signal"):
        ap.add_argument(f"--{task}", type=Path, help=f"the {task} population (default: the "
                        "format with more networks; a task without one is left out)")
    ap.add_argument("--tasks", default="smnist,charrnn,signal",
                    help="the populations to read, comma-separated")
    ap.add_argument("--out", type=Path, default=at.RESULTS)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    pops = {}
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        path = getattr(args, task)
        try:
            pops[task] = at.load(task, path)
        except SystemExit:
            if path is not None:
                raise
    chosen = splits(pops, args.splits)
    if not chosen:
        raise SystemExit("no split is possible with the populations at hand")
    unknown = [r for r in args.rules if r not in at.RULES]
    if unknown:
        raise SystemExit(f"unknown rules: {', '.join(unknown)}; known: {', '.join(at.RULES)}")
    results = [run(s, range(args.seeds), tuple(args.budgets), args.retrain_every, args.top_k,
                   args.rules) for s in chosen]
    groups = pooled(results, tuple(args.budgets), args.rules)
    seconds = time.perf_counter() - start
    command = " ".join(["python -m bench.transfer", f"--seeds {args.seeds}",
                        f"--budgets {','.join(map(str, args.budgets))}",
                        f"--retrain-every {args.retrain_every}", f"--top-k {args.top_k}",
                        *(f"--{t} {p.path}" for t, p in pops.items())]
                       + ([f"--splits {args.splits}"] if args.splits != "all" else [])
                       + ([f"--rules {','.join(args.rules)}"] if args.rules != RULES else [])
                       + ([f"--tasks {args.tasks}"] if args.tasks != "smnist,charrnn,signal"
                          else []))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / "transfer"
    stem.with_suffix(".md").write_text(markdown(results, groups, args, command, seconds))
    stem.with_suffix(".json").write_text(json.dumps(
        {"command": command, "seeds": args.seeds, "budgets_fte": list(args.budgets),
         "target": at.TARGET, "seconds": seconds, "groups": groups, "splits": results},
        indent=1, default=float) + "\n")
    plot(stem.with_suffix(".png"), groups, results[0]["grid_fte"], tuple(args.budgets))
    print(stem.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
