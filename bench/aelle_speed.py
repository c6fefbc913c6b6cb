"""How long AeLLE takes to train, and how long the pruner's ``prune()`` takes to answer.

Targets: a few hundred spectra train in seconds on the CPU (the coordinator retrains in the
background as trials complete); ``prune()`` returns in milliseconds, because it only scores the
current spectrum with the model it already has.

Spectra come from the cached SMNIST population when it exists (real N = 64 spectra), otherwise
from a synthetic family of the same length. Timings are wall-clock on this machine, one process.

Usage: python -m bench.aelle_speed [--population bench/results/population_smnist.jsonl]
       [--sizes 100 300 1000] [--calls 200] [--out bench/results]
Writes aelle_speed.json and aelle_speed.md under --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import optuna
import torch
from optuna.trial import create_trial

from aelle import AeLLE, AeLLEConfig, AeLLEPruner, LEThresholdPruner
from aelle.pruners import ATTR
from bench.machine import describe
from bench.population import read


def spectra_pool(path: Path, rng) -> tuple[list[np.ndarray], np.ndarray, str]:
    if path.is_file():
        rows = read(path)
        z, y = [], []
        for r in rows:
            if r["state"] == "complete":
                for e in r["epochs"]:
                    z.append(np.asarray(e["spectrum"]))
                    y.append(r["final"])
        return z, np.asarray(y), f"{path} ({len(z)} spectra)"
    q = rng.uniform(0, 1, 3000)
    x = np.linspace(0, 1, 64)
    z = [0.05 - (0.3 + a) * x + 0.02 * rng.standard_normal(64) for a in q]
    return z, 1.0 + 2.0 * q, "synthetic (no population file)"


def fit_times(z, y, sizes, rng) -> list[dict]:
    AeLLE(AeLLEConfig(epochs=2)).fit(z[:8], y[:8])  # first-use imports, not fitting, excluded
    out = []
    for n in sizes:
        pick = rng.choice(len(z), size=min(n, len(z)), replace=False)
        t0 = time.perf_counter()
        AeLLE().fit([z[i] for i in pick], y[pick])
        out.append({"spectra": len(pick), "seconds": time.perf_counter() - t0})
        print(f"fit {len(pick)} spectra: {out[-1]['seconds']:.2f} s", flush=True)
    return out


def prune_times(pruner, z, y, calls: int, rng) -> dict:
    """Median / p99 of ``prune()`` on a study of 100 completed trials of 11 steps each."""
    study = optuna.create_study(pruner=pruner)
    for _ in range(100):
        idx = rng.integers(len(z))
        study.add_trial(create_trial(
            value=float(y[idx]), intermediate_values={s: float(y[idx]) for s in range(11)},
            user_attrs={f"{ATTR}spectrum:{s}": z[idx].tolist() for s in range(11)}))
    trial = study.ask()
    trial.report(2.0, 0)
    trial.set_user_attr(f"{ATTR}spectrum:0", z[0].tolist())
    frozen = study.get_trials(deepcopy=False)[-1]
    t0 = time.perf_counter()
    pruner.prune(study, frozen)  # the first call fits (or starts the background fit)
    first = time.perf_counter() - t0
    if hasattr(pruner, "wait"):
        pruner.wait()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        pruner.prune(study, frozen)
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    return {"first_call_s": first, "median_ms": float(np.median(ms)),
            "p99_ms": float(np.percentile(ms, 99)), "calls": calls}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=Path,
                    default=Path("bench/results/population_smnist.jsonl"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(0)
    z, y, source = spectra_pool(args.population, rng)
    fits = fit_times(z, y, args.sizes, rng)
    prunes = {}
    for name, pruner in [
        ("AeLLEPruner (background refit)", AeLLEPruner(n_startup_trials=5, explore=0.0, seed=0)),
        ("LEThresholdPruner max_le", LEThresholdPruner("max_le", n_startup_trials=5,
                                                       explore=0.0, seed=0)),
    ]:
        prunes[name] = prune_times(pruner, z, y, args.calls, rng)
        print(f"{name}: first call {prunes[name]['first_call_s'] * 1e3:.1f} ms, then median "
              f"{prunes[name]['median_ms']:.2f} ms, p99 {prunes[name]['p99_ms']:.2f} ms",
              flush=True)
    machine = f"{describe()}, {torch.get_num_threads()} torch threads"
    lines = ["# AeLLE speed", "", f"Spectra: {source}. Machine: {machine}.", "",
             "| AeLLE fit (default config: 300 epochs, batch 64) | seconds |", "|---|---|"]
    lines += [f"| {f['spectra']} spectra | {f['seconds']:.2f} |" for f in fits]
    lines += ["", "| prune() on a study of 100 completed trials x 11 steps | first call | "
              "median | p99 |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['first_call_s'] * 1e3:.1f} ms | {v['median_ms']:.2f} ms | "
              f"{v['p99_ms']:.2f} ms |" for k, v in prunes.items()]
    report = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "aelle_speed.json").write_text(json.dumps(
        {"source": source, "machine": machine, "fit": fits, "prune": prunes}, indent=1) + "\n")
    (args.out / "aelle_speed.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
