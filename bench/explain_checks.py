"""Each method of ``aelle.explain`` against a known answer on trained networks, and the cost of a
full report.

    python -m bench.explain_checks [--out bench/results] [--quick]

- sysid: an LSTM trained on seed 002's fourth-order system; its linearised poles against the
  true ones (and an untrained network's, for scale).
- flipflop: an LSTM (N = 64) trained on the 3-bit flip-flop; the stable fixed points found
  (target 8) and the pulse-driven transitions (target 24, each flipping the pulsed bit only).
- KANN on both trained networks: relative state error and accuracy error.
- Ablation: the loss with the top-ranked units (by |delta response|, by sine amplitude)
  silenced against random units.
- Time of a full report (every method and the HTML) of the N = 64 network.

Writes bench/results/explain_checks.{md,json} and the reports under bench/results/explain/.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from aelle.explain import (
    ablation,
    attractor_graph,
    koopman,
    linearise,
    network_of,
    pole_distance,
    responses,
    write_report,
)
from bench.machine import describe
from tasks import get
from tasks.explain_cli import explain_run, validation_loss
from tasks.sysid import true_poles


def train(task_name, params, settings, epochs, decay_at=()):
    task = get(task_name)
    resolved = task.resolve(params, {**settings, "device": "cpu"})
    run = task.build(params, resolved, 0, torch.device("cpu"))
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        run.train_epoch()
        if epoch in decay_at:
            for group in run.optimizer.param_groups:
                group["lr"] *= 0.5
    return run, time.perf_counter() - t0


def ablation_rows(net, run, counts, draws):
    resp = responses(net)
    loss = validation_loss(run, net)
    rows = {}
    for metric in ("delta", "amplitude"):
        a = ablation(net, resp.ranking(metric).tolist(), loss, counts, draws=draws,
                     metric=metric, loss_name="validation loss of the task")
        rows[metric] = a.to_dict()
    return rows


def check_sysid(out: Path, epochs: int) -> dict:
    params = {"arch": "lstm", "p": 0.3, "lr": 1e-2}
    untrained, _ = train("sysid", params, {}, 0)
    base = pole_distance(linearise(network_of(untrained.model)).poles, true_poles())
    run, seconds = train("sysid", params, {}, epochs, decay_at=(epochs // 2, 3 * epochs // 4))
    net = network_of(run.model)
    lin = linearise(net)
    truth = true_poles()
    per_pole = [float(np.abs(lin.poles - p).min()) for p in truth]
    kann = koopman(net, run.spectrum_probe().inputs.double(), run.spectrum_probe().warmup)
    value = run.validate()
    exp = explain_run("sysid", params, run, value, progress=False)
    write_report(exp, out / "explain", "sysid_lstm")
    return {"params": params, "epochs": epochs, "train_seconds": seconds,
            "validation_mse": value, "pole_distance": pole_distance(lin.poles, truth),
            "untrained_pole_distance": base, "per_true_pole": per_pole,
            "true_poles": [str(np.round(p, 4)) for p in truth],
            "matched_poles": [str(np.round(lin.poles[np.abs(lin.poles - p).argmin()], 4))
                              for p in truth],
            "steady_state_gain": float(lin.dc_gain[0, 0]),
            "kann_relative_error": kann.relative_error,
            "kann_output_error": kann.output_error,
            "ablation": ablation_rows(net, run, [1, 2, 3], 10)}


def check_flipflop(out: Path, epochs: int) -> dict:
    params = {"arch": "lstm", "p": 0.3, "lr": 1e-2}
    run, seconds = train("flipflop", params, {"hidden": 64}, epochs)
    net = network_of(run.model)
    probe = run.spectrum_probe()
    inputs = probe.inputs.double()
    states = net.run(inputs)[:, probe.warmup:].reshape(-1, net.state_size)
    starts = states[torch.randperm(len(states), generator=torch.Generator().manual_seed(0))[:128]]
    graph = attractor_graph(net, starts, [-1.0, 1.0])
    words = {i: tuple(np.sign(graph.points[i].output).astype(int)) for i in graph.stable}
    single_flips = 0
    for t in graph.transitions:
        if t.target < 0:
            continue
        a, b = np.array(words[t.source]), np.array(words[t.target])
        changed = np.nonzero(a != b)[0].tolist()
        single_flips += changed == [t.channel] and b[t.channel] == np.sign(t.amplitude)
    kann = koopman(net, inputs, probe.warmup, decision="sign")
    value = run.validate()
    t0 = time.perf_counter()
    exp = explain_run("flipflop", params, run, value, progress=False)
    explain_s = time.perf_counter() - t0
    write_report(exp, out / "explain", "flipflop_lstm64")
    report_s = time.perf_counter() - t0
    return {"params": params, "hidden": 64, "epochs": epochs, "train_seconds": seconds,
            "validation_mse": value, "stable_points": len(graph.stable),
            "all_points": len(graph.points), "distinct_words": len(set(words.values())),
            "transitions": len(graph.transitions), "single_bit_flips": int(single_flips),
            "kann_relative_error": kann.relative_error,
            "kann_accuracy_error": kann.accuracy_error, "kann_rank": int(kann.matrix.shape[0]),
            "ablation": ablation_rows(net, run, [4, 8, 16], 10),
            "report_seconds": report_s, "method_seconds": exp.seconds,
            "explain_seconds": explain_s}


def check_smnist(out: Path, epochs: int) -> dict:
    params = {"arch": "lstm", "p_lstm": 0.3}
    run, seconds = train("smnist", params, {}, epochs)
    value = run.validate()
    exp = explain_run("smnist", params, run, value, progress=False)
    write_report(exp, out / "explain", "smnist_lstm")
    return {"params": params, "epochs": epochs, "train_seconds": seconds,
            "validation_cross_entropy": value,
            "kann_relative_error": exp.koopman.relative_error,
            "kann_accuracy_error": exp.koopman.accuracy_error,
            "stable_points": len(exp.attractors.stable)}


STAGES = {"sysid": (check_sysid, 600, 40), "flipflop": (check_flipflop, 12, 3),
          "smnist": (check_smnist, 10, 2)}  # name: (check, epochs, epochs with --quick)


def _ablation_table(name, rows) -> list[str]:
    lines = []
    for metric, a in rows.items():
        cells = "; ".join(f"k={k}: {r:.4g} vs {m:.4g} ± {s:.2g}" for k, r, m, s in
                          zip(a["counts"], a["ranked"], a["random"], a["random_std"],
                              strict=True))
        lines.append(f"| {name} | {metric} | {a['baseline']:.4g} | {cells} |")
    return lines


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--quick", action="store_true", help="fewer epochs (a smoke run)")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help="the stages to run, comma-separated; the others keep the figures "
                             "of the last run in OUT/explain_checks.json")
    args = parser.parse_args(argv)
    quick = args.quick
    wanted = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {', '.join(unknown)}; known: {', '.join(STAGES)}")
    machine = (f"{describe()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
               f"load {os.getloadavg()[0]:.1f}")
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "explain_checks.json"
    result = json.loads(saved.read_text()) if saved.is_file() else {}
    missing = [s for s in STAGES if s not in wanted and s not in result]
    if missing:
        parser.error(f"{saved} has no figures of {', '.join(missing)}: run those stages too")
    for name in wanted:  # saved after each: a long run keeps what it measured
        check, epochs, quick_epochs = STAGES[name]
        t0 = time.perf_counter()
        result[name] = check(args.out, quick_epochs if quick else epochs)
        result[name]["machine"] = machine
        result[name]["stage_seconds"] = time.perf_counter() - t0
        result[name]["load_after"] = os.getloadavg()[0]
        print(json.dumps(result[name], indent=1, default=str), flush=True)
        saved.write_text(json.dumps(result, indent=2, default=str))
    write_markdown(result, args.out)
    return result


def write_markdown(result: dict, out: Path) -> None:
    s, f, m = result["sysid"], result["flipflop"], result["smnist"]
    lines = ["# Explain checks", "", "Command: `python -m bench.explain_checks` (a stage alone: "
             "`--stages flipflop`, the others kept from the last run)", "",
             "Machines, per stage:", ""]
    for name in STAGES:
        r = result[name]
        after = "" if r.get("load_after") is None else f", load average after {r['load_after']:.1f}"
        lines.append(f"- {name}: {r['machine']}{after}")
    lines += ["", "## sysid: linearised poles of a trained LSTM (N = 8) against the true poles", "",
             f"{s['epochs']} epochs ({s['train_seconds']:.0f} s), validation MSE "
             f"{s['validation_mse']:.4g} (targets scaled to unit variance).", "",
             "| true pole | nearest linearised pole | distance |", "|---|---|---|"]
    lines += [f"| {t} | {p} | {d:.2e} |" for t, p, d in
              zip(s["true_poles"], s["matched_poles"], s["per_true_pole"], strict=True)]
    lines += ["", f"Largest distance (one-to-one assignment): **{s['pole_distance']:.3e}**; "
              f"the same network untrained: {s['untrained_pole_distance']:.3f}. Steady-state "
              f"gain of the linearisation {s['steady_state_gain']:.3f} (in units of the scaled "
              "targets).", "",
              "## flipflop: fixed points and transitions of a trained LSTM (N = 64)", "",
              f"{f['epochs']} epochs ({f['train_seconds']:.0f} s), validation MSE "
              f"{f['validation_mse']:.3g}. Stable fixed points: **{f['stable_points']}** "
              f"(target 8; {f['distinct_words']} distinct output words), of "
              f"{f['all_points']} found; transitions: **{f['transitions']}** (target 24), of "
              f"which {f['single_bit_flips']} flip exactly the pulsed bit to the pulse's sign.",
              "", "## KANN on the trained networks", "",
              "| network | relative state error | accuracy error |", "|---|---|---|",
              f"| sysid LSTM 8 | {s['kann_relative_error']:.3e} | - (one output; output error "
              f"{s['kann_output_error']:.3e}) |",
              f"| flipflop LSTM 64 | {f['kann_relative_error']:.3e} | "
              f"{f['kann_accuracy_error']:.4f} (sign decisions) |",
              f"| smnist LSTM 64 | {m['kann_relative_error']:.3e} | "
              f"{m['kann_accuracy_error']:.4f} (argmax decisions) |", "",
              "## Ablation: top-ranked units against random units (validation MSE)", "",
              "| network | ranked by | intact | k units: ranked vs random (mean ± std) |",
              "|---|---|---|---|"]
    lines += _ablation_table("sysid LSTM 8", s["ablation"])
    lines += _ablation_table("flipflop LSTM 64", f["ablation"])
    lines += ["", "## Cost of a full report of the N = 64 flip-flop network", "",
              f"Every method and the HTML: **{f['report_seconds']:.1f} s** (methods "
              f"{f['explain_seconds']:.1f} s: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in f["method_seconds"].items()) + ").",
              "", f"SMNIST LSTM (N = 64, {m['epochs']} epochs on the digits, cross-entropy "
              f"{m['validation_cross_entropy']:.3f}): report in explain/smnist_lstm.html.", "",
              "Ablation losses are the task's validation loss (MSE of the scaled targets for "
              "sysid and flipflop). The winners of real studies, and the ranking against "
              "single-unit ablation: explain_winners.md."]
    (out / "explain_checks.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
