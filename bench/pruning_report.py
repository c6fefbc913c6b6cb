"""The live pruning benchmark's report: markdown tables, a plot of the best value against the
epochs spent, and a JSON summary, drawn from the study records of ``bench.pruning``.

The report states measured figures only. Written from the records of the newest record's
environment (``bench.accounting.one_environment``), the last line of each variant and seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bench.accounting import evaluate, latest, one_environment, oracle_share, summarise
from bench.rules import AELLE, VARIANTS


def report(task: str, records: list[dict], path_md: Path, path_png: Path) -> dict:
    """Write ``path_md``, ``path_png`` and the JSON summary beside ``path_md``; return it."""
    records, foreign = one_environment(records)
    records = latest(records)
    refs = {r["seed"]: r for r in records if r["variant"] == "none"}
    rows = [evaluate(r, refs[r["seed"]]) for r in records if r["seed"] in refs]
    table = summarise(rows, VARIANTS)
    spec = records[0]["spec"]
    lines = header(task, spec, records[0].get("env"), foreign,
                   sum(x["unreproduced"] for x in rows))
    lines += ["", *summary_table(table)]
    lines += ["", "## Per seed", "", *per_seed_table(rows)]
    lines += ["", "## Decisions by the epoch they were taken", "",
              *stops_by_epoch_table(rows, list(table), spec["epochs"])]
    if refs:
        lines += ["", "## Oracle bound", "", *oracle_table(list(refs.values()))]
    lines += ["", "## Better-half trials that AeLLE stopped", "", *wrongly_pruned(rows)]
    path_md.write_text("\n".join(lines) + "\n")
    plot(task, rows, path_png)
    summary = {"task": task, "table": table,
               "rows": [{k: v for k, v in x.items() if k != "curve"} for x in rows]}
    path_md.with_suffix(".json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    return summary


def header(task: str, spec: dict, env: dict | None, foreign: int, unreproduced: int) -> list[str]:
    """The title, the command, the study's sizes, the definitions and the environment."""
    lines = [f"# Pruning benchmark: {task}", "",
             f"Reproduce: `python -m bench.pruning {task}` (resumes from "
             f"`bench/results/pruning_{task}.jsonl`; `--report` redraws this from it).", "",
             f"{spec['budget']} trials x {spec['epochs']} epochs per study, random sampler "
             f"seeded per study seed, settings `{json.dumps(spec['settings'])}`"
             + (f", search space `{json.dumps(spec['search_space'])}`"
                if spec.get("search_space") else "") + ".",
             "Epochs are training epochs (epoch 0, the untrained network, trains nothing). "
             "Regret: (best final - best final of the reference) / |best final of the "
             "reference|. Precision and recall of \"in the better half\" (final value below the "
             "median of the reference study's trials, diverged counting as worse) in what the "
             "pruner kept; the none row gives AeLLE's shadow decisions on the reference study."]
    if env:
        lines.append(f"Environment: {env['cpu']} ({env['capability']}), torch {env['torch']}, "
                     f"numpy {env['numpy']}, scikit-learn {env['sklearn']}"
                     + (f"; {foreign} studies recorded elsewhere are left out" if foreign
                        else "") + ".")
    lines.append(f"Unreproduced trials (completed here and in the reference with different "
                 f"final values): {unreproduced}"
                 + ("" if not unreproduced else " -- the comparison is not exact") + ".")
    return lines


def summary_table(table: dict[str, dict]) -> list[str]:
    """One row per variant: the means over seeds."""
    lines = ["| pruner | seeds | epochs | % of none | best final | regret (mean / worst) "
             "| precision | recall | pruned | mean stop epoch | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for v, t in table.items():
        lines.append(f"| {v} | {t['seeds']} | {t['epochs']:.0f} | {100 * t['epoch_share']:.0f} %"
                     f" | {t['best']:.4f} | {100 * t['regret']:.2f} % / "
                     f"{100 * t['worst_regret']:.2f} % | {t['precision']:.2f} | "
                     f"{t['recall']:.2f} | {t['pruned']:.1f} | {t['stop_epoch']:.1f} | "
                     f"{t['seconds']:.0f} |")
    return lines


def per_seed_table(rows: list[dict]) -> list[str]:
    """One row per study, with how many trials it stopped at each epoch."""
    lines = ["| pruner | seed | epochs | best final | regret | precision | recall | "
             "stopped at (epoch: trials) |", "|---|---|---|---|---|---|---|---|"]
    for x in rows:
        stops = dict(sorted({e: x["stop_epochs"].count(e) for e in x["stop_epochs"]}.items()))
        lines.append(f"| {x['variant']} | {x['seed']} | {x['epochs']} | {x['best']:.4f} | "
                     f"{100 * x['regret']:.2f} % | {x['precision']:.2f} | {x['recall']:.2f} | "
                     f"{stops or '-'} |")
    return lines


def stops_by_epoch_table(rows: list[dict], variants: list[str], epochs: int) -> list[str]:
    """Per variant and epoch, the better-half trials and all trials stopped there, summed over
    the seeds."""
    lines = ["Trials stopped at each epoch over all seeds, as `better-half / all`: a stop of a "
             "better-half trial is a wrong decision, so 1 - better/all is the precision of "
             "that epoch's stops.", "",
             "| pruner | " + " | ".join(f"epoch {e}" for e in range(epochs)) + " |",
             "|---|" + "---|" * epochs]
    for v in variants:
        total: dict[int, list[int]] = {}
        for x in rows:
            if x["variant"] != v:
                continue
            for e, (g, n) in x["stops_by_epoch"].items():
                t = total.setdefault(int(e), [0, 0])
                t[0] += g
                t[1] += n
        lines.append(f"| {v} | " + " | ".join(
            f"{total[e][0]} / {total[e][1]}" if e in total else "-" for e in range(epochs))
            + " |")
    return lines


def oracle_table(references: list[dict]) -> list[str]:
    """The share of the reference's epochs an oracle spends to keep 85 % of the better half
    (``bench.accounting.oracle_share``), with no start-up and with the in-study start-up."""
    startup = AELLE["n_startup_trials"]
    lines = ["Share of the reference's epochs spent by a pruner that knows every final value, "
             "keeps 85 % of the better half to the end and stops every other trial at epoch 0, "
             "after first training the start-up trials through. Mean over seeds.", "",
             "| start-up trials | % of none |", "|---|---|"]
    for n in (0, startup):
        share = np.mean([oracle_share(r, n) for r in references])
        lines.append(f"| {n} | {100 * share:.0f} % |")
    return lines


def wrongly_pruned(rows: list[dict]) -> list[str]:
    """Each better-half trial an AeLLE variant stopped, with the final it would have reached."""
    lines = [f"- {x['variant']} seed {x['seed']}: trial {w['number']} {w['params']} stopped at "
             f"epoch {w['stopped_at']}; it would end at {w['final_would_be']:.4f} (rank "
             f"{w['rank']} of the reference), max LE then {w['max_le']}"
             for x in rows if x["variant"].startswith("aelle") for w in x["wrongly_pruned"]]
    return lines or ["None."]


def plot(task: str, rows: list[dict], path: Path) -> None:
    """Per seed, the best final value so far against the training epochs each variant spent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted({x["seed"] for x in rows})
    fig, axes = plt.subplots(1, len(seeds), figsize=(5 * len(seeds), 4.2), squeeze=False)
    # tab10's colours, then their light shades: one colour for each of the twelve variants
    colors = dict(zip(VARIANTS, plt.cm.tab20.colors[::2] + plt.cm.tab20.colors[1::2],
                      strict=False))
    for ax, seed in zip(axes[0], seeds, strict=True):
        for x in rows:
            if x["seed"] != seed or not x["curve"]:
                continue
            e, b = zip(*x["curve"], strict=True)
            b = np.array(b, dtype=float)
            ok = np.isfinite(b)
            ax.step(np.array(e)[ok], b[ok], where="post", color=colors[x["variant"]],
                    label=x["variant"], lw=2 if x["variant"].startswith("aelle") else 1.2)
        ax.set_title(f"{task}, seed {seed}")
        ax.set_xlabel("training epochs consumed")
        ax.set_ylabel("best final validation loss so far")
        finite = [b for x in rows if x["seed"] == seed for _, b in x["curve"] if math.isfinite(b)]
        if finite:
            lo, hi = min(finite), np.percentile(finite, 60)
            ax.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
