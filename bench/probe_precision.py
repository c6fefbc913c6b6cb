"""How the SMNIST spectrum probe should be taken: its float32 error against float64, whether it
overflows where the task's own inputs do not, which state convention carries a two-state
network's dynamics, and how much the thread count moves losses and spectra.

Five measurements, on MNIST rows (``--data``, 28 steps of 28 pixels) with the probe the
population records (the SMNIST defaults unless ``--set`` says otherwise):

- precision: per architecture, networks at three init scales spread over the architecture's
  range, untrained and after ``--epochs`` epochs; the largest float32 - float64 difference over
  the 5 leading exponents, for each state convention;
- overflow: Lipschitz RNNs over p, whether the task's validation loss is finite and whether the
  probe (at float32 and float64) stays finite, at the recorded probe length and a longer one;
- convention: networks of a recorded population (``--population``: their parameters, seeds and
  final losses) rebuilt untrained; for coRNN, LEM and LSTM the hidden and the full convention's
  max and mean exponent, their spread over the networks and their Spearman correlation with the
  final loss;
- chaos: for chaotic networks, float32 against float64 beside float64 against float64 with the
  inputs moved by one float32 rounding, the standard error over the sequences and a probe four
  times as long (is the float32 difference the dtype's, or the trajectory's?);
- threads: a few networks trained with 1 and with 2 torch threads; the largest difference of
  the validation losses and of the exponents.

Usage: python -m bench.probe_precision --data /work/shared/data/mnist
       [--population bench/results/population_smnist.jsonl] [--epochs 1] [--train-size 2000]
Writes bench/results/probe_precision.{json,md}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

import aelle
from aelle.spectra import SpectrumDivergedError
from tasks.registry import get
from tasks.smnist import ARCHS, P_RANGES

LEAD = 5


def spectrum(run, settings, state: str, dtype: torch.dtype):
    """(exponents, seconds) of the run now, or (the error message, seconds)."""
    probe = run.spectrum_probe()
    cell = run.lyapunov_cell(state)
    t0 = time.perf_counter()
    try:
        res = aelle.lyapunov_spectrum(cell, probe.inputs, warmup=probe.warmup, dtype=dtype,
                                      t_on=settings.spectrum_t_on, h0=probe.h0)
    except SpectrumDivergedError as e:
        return str(e), time.perf_counter() - t0
    ex = res.exponents.cpu().numpy()
    return (ex if np.isfinite(ex).all() else "non-finite exponents"), time.perf_counter() - t0


def build(task, params, settings, seed):
    torch.manual_seed(seed)
    return task.build(params, settings, seed, torch.device("cpu"))


def precision(task, base: dict, epochs: int) -> list[dict]:
    rows = []
    for arch in ARCHS:
        lo, hi = P_RANGES[arch]
        for p in np.linspace(lo, hi, 5)[1:4]:  # inside the range, away from its ends
            params = {"arch": arch, f"p_{arch}": float(p)}
            settings = task.resolve(params, base)
            run = build(task, params, settings, seed=7)
            for epoch in (0, epochs):
                if epoch:
                    for _ in range(epochs):
                        run.train_epoch()
                loss = run.validate()
                states = ("hidden", "full") if arch in ("lstm", "cornn", "lem") else ("hidden",)
                for state in states:
                    s32, t32 = spectrum(run, settings, state, torch.float32)
                    s64, t64 = spectrum(run, settings, state, torch.float64)
                    row = {"arch": arch, "p": round(float(p), 3), "epoch": epoch,
                           "state": state, "loss": loss, "seconds32": round(t32, 3),
                           "seconds64": round(t64, 3)}
                    if isinstance(s32, str) or isinstance(s64, str):
                        row["error"] = {"float32": s32 if isinstance(s32, str) else None,
                                        "float64": s64 if isinstance(s64, str) else None}
                    else:
                        row["max_le64"] = float(s64[0])
                        row["lead_err"] = float(np.abs(s32[:LEAD] - s64[:LEAD]).max())
                        row["all_err"] = float(np.abs(s32 - s64).max())
                    rows.append(row)
                    print(row, file=sys.stderr, flush=True)
    return rows


def overflow(task, base: dict) -> list[dict]:
    rows = []
    settings0 = task.settings(base)
    for p in (5.0, 10.0, 12.0, 15.0, 20.0):
        params = {"arch": "lipschitz", "p_lipschitz": p}
        for steps in (settings0.spectrum_steps, 4 * settings0.spectrum_steps):
            settings = task.resolve(params, {**base, "spectrum_steps": steps})
            run = build(task, params, settings, seed=3)
            loss0 = run.validate()
            row = {"p": p, "probe_steps": settings.spectrum_warmup + steps, "loss0": loss0}
            for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
                s, _ = spectrum(run, settings, "hidden", dtype)
                row[name] = s if isinstance(s, str) else round(float(s[0]), 4)
            if steps == settings0.spectrum_steps:
                row["loss1"] = run.train_epoch() and run.validate()
                s, _ = spectrum(run, settings, "hidden", torch.float64)
                row["float64_after_1"] = s if isinstance(s, str) else round(float(s[0]), 4)
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    return rows


def read_population(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def convention(task, base: dict, population: Path, per_arch: int) -> list[dict]:
    rows = []
    taken: dict[str, int] = {}
    for r in read_population(population):
        arch = r["params"]["arch"]
        if arch not in ("cornn", "lem", "lstm") or r["final"] is None:
            continue
        if taken.setdefault(arch, 0) >= per_arch:
            continue
        taken[arch] += 1
        settings = task.resolve(r["params"], base)
        run = build(task, r["params"], settings, seed=r.get("seed", r["index"]))
        row = {"arch": arch, "p": r["params"][f"p_{arch}"], "final": r["final"]}
        for state in ("hidden", "full"):
            s, _ = spectrum(run, settings, state, torch.float64)
            row[f"{state}_max"] = float(s.max()) if not isinstance(s, str) else math.nan
            row[f"{state}_mean"] = float(s.mean()) if not isinstance(s, str) else math.nan
        rows.append(row)
    return rows


def convention_summary(rows: list[dict]) -> list[dict]:
    out = []
    for arch in ("cornn", "lem", "lstm"):
        sel = [r for r in rows if r["arch"] == arch]
        if len(sel) < 3:
            continue
        final = [r["final"] for r in sel]
        p = [r["p"] for r in sel]
        entry = {"arch": arch, "networks": len(sel)}
        for state in ("hidden", "full"):
            for stat in ("max", "mean"):
                v = [r[f"{state}_{stat}"] for r in sel]
                entry[f"{state}_{stat}_range"] = [min(v), max(v)]
                entry[f"{state}_{stat}_std"] = float(np.std(v))
                entry[f"{state}_{stat}_rho_loss"] = float(spearmanr(v, final).statistic)
                entry[f"{state}_{stat}_rho_p"] = float(spearmanr(v, p).statistic)
        out.append(entry)
    return out


def chaos(task, base: dict) -> list[dict]:
    """Where float32 and float64 differ by more than 1e-3, is it the dtype or the trajectory?
    For chaotic networks, float64 against float64 with inputs moved by one float32 rounding
    (relative 6e-8), the spectrum's standard error over the sequences, and float64 against a
    float64 probe four times as long."""
    rows = []
    for arch, p in (("rnn", 1.55), ("gru", 1.55), ("lstm", 2.275), ("asrnn", 25.05),
                    ("lem", 5.05), ("rnn", 0.3)):
        params = {"arch": arch, f"p_{arch}": p}
        settings = task.resolve(params, base)
        run = build(task, params, settings, seed=7)
        probe = run.spectrum_probe()
        cell = run.lyapunov_cell(settings.spectrum_state)

        def le(inputs, dtype=torch.float64, cell=cell, warmup=probe.warmup):
            return aelle.lyapunov_spectrum(cell, inputs, warmup=warmup, dtype=dtype)

        x = probe.inputs.double()
        r64, r32 = le(x), le(probe.inputs, torch.float32)
        g = torch.Generator().manual_seed(0)
        moved = le(x * (1 + 6e-8 * torch.randn(x.shape, generator=g, dtype=x.dtype)))
        long_settings = task.resolve(params,
                                     {**base, "spectrum_steps": 4 * settings.spectrum_steps})
        longer = build(task, params, long_settings, seed=7).spectrum_probe()
        r_long = aelle.lyapunov_spectrum(cell, longer.inputs.double(), warmup=longer.warmup,
                                         dtype=torch.float64)
        e64 = r64.exponents[:LEAD]
        b = probe.inputs.shape[0]
        rows.append({
            "arch": arch, "p": p, "state": settings.spectrum_state, "max_le": float(e64[0]),
            "f32_vs_f64": float((r32.exponents[:LEAD] - e64).abs().max()),
            "f64_moved_input": float((moved.exponents[:LEAD] - e64).abs().max()),
            "std_error": float((r64.std[:LEAD] / b ** 0.5).max()),
            "f64_4x_longer": float((r_long.exponents[:LEAD] - e64).abs().max())})
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def threads(task, base: dict, epochs: int) -> list[dict]:
    rows = []
    for arch, p in (("gru", 1.0), ("lem", 3.0), ("cornn", 10.0), ("lipschitz", 4.0)):
        params = {"arch": arch, f"p_{arch}": p}
        settings = task.resolve(params, base)
        runs = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            run = build(task, params, settings, seed=11)
            losses = [run.train_epoch() for _ in range(epochs)] + [run.validate()]
            s, _ = spectrum(run, settings, "full", torch.float64)
            runs[n] = (np.array(losses), s)
        torch.set_num_threads(1)
        (l1, s1), (l2, s2) = runs[1], runs[2]
        rows.append({"arch": arch, "p": p, "loss_diff": float(np.abs(l1 - l2).max()),
                     "val_loss": float(l1[-1]),
                     "spectrum_diff": float(np.abs(s1 - s2).max()),
                     "lead_diff": float(np.abs(s1[:LEAD] - s2[:LEAD]).max())})
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def markdown(result: dict) -> str:
    lines = ["# The SMNIST spectrum probe: precision, overflow, convention, threads", "",
             f"Command: `{result['command']}`", f"Machine: {result['machine']}",
             f"Settings: `{json.dumps(result['settings'])}`", "",
             "## float32 against float64 (max |difference| over the 5 leading exponents)", "",
             "| arch | state | epoch | p | max LE (f64) | lead err | all err | s f32 | s f64 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["precision"]:
        if "error" in r:
            lines.append(f"| {r['arch']} | {r['state']} | {r['epoch']} | {r['p']} | "
                         f"{r['error']} | | | {r['seconds32']} | {r['seconds64']} |")
        else:
            lines.append(f"| {r['arch']} | {r['state']} | {r['epoch']} | {r['p']} | "
                         f"{r['max_le64']:.4f} | {r['lead_err']:.2e} | {r['all_err']:.2e} | "
                         f"{r['seconds32']} | {r['seconds64']} |")
    lines += ["", "## Lipschitz RNN: does the probe overflow where the task's loss is finite?", "",
              "| p | probe steps | loss epoch 0 | float32 max LE | float64 max LE | "
              "loss epoch 1 | float64 max LE epoch 1 |", "|---|---|---|---|---|---|---|"]
    for r in result["overflow"]:
        lines.append(f"| {r['p']} | {r['probe_steps']} | {r['loss0']:.3f} | {r['float32']} | "
                     f"{r['float64']} | {r.get('loss1', '')} | {r.get('float64_after_1', '')} |")
    lines += ["", "## State convention of two-state cells (untrained networks of the recorded "
              "population, float64)", "",
              "Spearman correlation with the final loss and with p; std of the statistic over "
              "the networks.", "",
              "| arch | n | state | max LE range | max LE std | rho(max, loss) | rho(max, p) | "
              "rho(mean, loss) |", "|---|---|---|---|---|---|---|---|"]
    for e in result["convention"]:
        for state in ("hidden", "full"):
            lo, hi = e[f"{state}_max_range"]
            lines.append(f"| {e['arch']} | {e['networks']} | {state} | {lo:.4f} .. {hi:.4f} | "
                         f"{e[f'{state}_max_std']:.4f} | {e[f'{state}_max_rho_loss']:.2f} | "
                         f"{e[f'{state}_max_rho_p']:.2f} | {e[f'{state}_mean_rho_loss']:.2f} |")
    lines += ["", "## Chaotic networks: the dtype or the trajectory? (5 leading exponents, "
              "untrained)", "",
              "| arch | p | state | max LE | f32 vs f64 | f64 vs f64, input moved 6e-8 | "
              "std error (B seqs) | f64 vs 4x longer probe |", "|---|---|---|---|---|---|---|---|"]
    for r in result.get("chaos", []):
        lines.append(f"| {r['arch']} | {r['p']} | {r['state']} | {r['max_le']:.4f} | "
                     f"{r['f32_vs_f64']:.2e} | {r['f64_moved_input']:.2e} | "
                     f"{r['std_error']:.2e} | {r['f64_4x_longer']:.2e} |")
    lines += ["", "## Threads 1 against 2 (same seed, same data)", "",
              "| arch | p | max loss diff | val loss | max exponent diff | lead diff |",
              "|---|---|---|---|---|---|"]
    for r in result["threads"]:
        lines.append(f"| {r['arch']} | {r['p']} | {r['loss_diff']:.2e} | {r['val_loss']:.4f} | "
                     f"{r['spectrum_diff']:.2e} | {r['lead_diff']:.2e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from bench.machine import describe
    from tasks.cli import assignment

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="MNIST IDX directory (default: the digits)")
    ap.add_argument("--population", type=Path,
                    default=Path("bench/results/population_smnist.jsonl"))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--per-arch", type=int, default=16,
                    help="networks per architecture in the convention measurement")
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--only", nargs="*", default=["precision", "overflow", "convention",
                                                  "chaos", "threads"])
    ap.add_argument("--out", type=Path, default=Path("bench/results/probe_precision"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    task = get("smnist")
    base = {"device": "cpu", "train_size": args.train_size, **dict(args.set)}
    if args.data:
        base["data_dir"] = args.data
    result = {"command": "python -m bench.probe_precision " + " ".join(argv or sys.argv[1:]),
              "machine": describe(), "settings": base, "precision": [], "overflow": [],
              "convention": [], "chaos": [], "threads": []}
    if "precision" in args.only:
        result["precision"] = precision(task, base, args.epochs)
    if "overflow" in args.only:
        result["overflow"] = overflow(task, base)
    if "convention" in args.only and args.population.exists():
        result["convention_rows"] = convention(task, {k: v for k, v in base.items()
                                                      if k != "train_size"}, args.population,
                                            args.per_arch)
        result["convention"] = convention_summary(result["convention_rows"])
    if "chaos" in args.only:
        result["chaos"] = chaos(task, base)
    if "threads" in args.only:
        result["threads"] = threads(task, base, args.epochs)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
