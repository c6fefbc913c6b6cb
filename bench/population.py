"""Train a population of networks of one task and record, for every network, the Lyapunov
spectrum and validation loss after every epoch (epoch 0 = untrained) and its final loss.

The population feeds ``bench/classify.py`` (the dissertation's Tables 3.1-3.3, B2-B4). Each
network's parameters come from the task's search space, drawn by a random sampler seeded with
the network's index, so a population is reproducible and can be extended: the cache file is JSON
lines, one network per line, appended as each finishes; rerunning skips networks already there.
For SMNIST the architectures take turns (network i is architecture i mod 8), so a population cut
short stays balanced.

Usage: python bench/population.py smnist --networks 320 [--set data_dir=../shared/data/mnist]
       [--set epochs=10 ...] [--out bench/results/population_smnist.jsonl] [--threads 2]
       [--shard K/N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import optuna
import torch

from tasks import run_trial
from tasks.cli import assignment
from tasks.registry import get
from tasks.smnist import ARCHS


def params_for(task, index: int, seed: int) -> dict:
    """Network ``index``'s parameters: a seeded random draw from the task's search space."""
    sampler = optuna.samplers.RandomSampler(seed=seed * 1_000_003 + index)
    trial = optuna.create_study(sampler=sampler).ask()
    fixed = {"arch": ARCHS[index % len(ARCHS)]} if task.name == "smnist" else None
    return task.suggest(trial, fixed=fixed)


def train_one(task, index: int, seed: int, settings: dict) -> dict:
    params = params_for(task, index, seed)
    epochs = []

    def record(report):
        epochs.append({
            "epoch": report.epoch, "value": report.value, "train_loss": report.train_loss,
            "seconds": round(report.train_seconds, 4),
            "spectrum_seconds": round(report.spectrum_seconds, 4),
            "spectrum": None if report.spectrum is None
            else [float(f"{x:.6g}") for x in report.spectrum],
        })

    start = time.perf_counter()
    outcome = run_trial(task, params, {**settings, "report_initial": True},
                        seed=seed * 1_000_003 + index, callback=record)
    return {"index": index, "task": task.name, "params": params, "settings": settings,
            "state": outcome.state, "final": outcome.value if outcome.state == "complete" else None,
            "reason": outcome.reason, "seconds": round(time.perf_counter() - start, 3),
            "epochs": epochs}


def shard(text: str) -> tuple[int, int]:
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and int(k) < int(n)):
        raise argparse.ArgumentTypeError(f"expected K/N with 0 <= K < N, got {text!r}")
    return int(k), int(n)


def read(path: Path) -> list[dict]:
    """The networks already in a population file (a torn last line, from a kill, is dropped)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", choices=["smnist", "charrnn", "signal"])
    ap.add_argument("--networks", type=int, required=True, help="population size")
    ap.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                    help="a task setting, repeatable")
    ap.add_argument("--seed", type=int, default=0, help="population seed")
    ap.add_argument("--out", type=Path, help="cache file (default bench/results/population_TASK"
                    ".jsonl)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--shard", type=shard, default=(0, 1), metavar="K/N",
                    help="train only rounds K, K+N, ... (a round: 8 networks, one per SMNIST "
                    "architecture), so N processes can share a population file")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    task = get(args.task)
    settings = dict(args.set)
    task.settings(settings)  # bad settings fail here, before any training
    out = args.out or Path("bench/results") / f"population_{args.task}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)

    done = read(out)
    for row in done:
        if row["settings"] != settings or row["task"] != args.task:
            sys.exit(f"{out} holds networks trained with other settings ({row['settings']}); "
                     "use another --out")
    if done and not out.read_text().endswith("\n"):  # a torn tail: appends need a fresh line
        out.write_text("".join(json.dumps(r) + "\n" for r in done))
    have = {r["index"] for r in done}
    k, n_shards = args.shard
    todo = [i for i in range(args.networks)
            if i not in have and (i // len(ARCHS)) % n_shards == k]
    print(f"{out}: {len(have)} networks cached, {len(todo)} to train", file=sys.stderr)
    start = time.perf_counter()
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for n, index in enumerate(todo, 1):
            row = train_one(task, index, args.seed, settings)
            os.write(fd, (json.dumps(row) + "\n").encode())  # one append: shards never interleave
            rate = (time.perf_counter() - start) / n
            shown = {k: (round(v, 4) if isinstance(v, float) else v)
                     for k, v in row["params"].items()}
            final = "-" if row["final"] is None else f"{row['final']:.4f}"
            print(f"[{n}/{len(todo)}] #{index} {shown} {row['state']} final={final} "
                  f"{row['seconds']:.1f}s, ~{rate * (len(todo) - n) / 60:.1f} min left",
                  file=sys.stderr, flush=True)
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
