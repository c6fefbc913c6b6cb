"""Train a population of networks of one task and record, for every network, the Lyapunov
spectrum and validation loss after every epoch (epoch 0 = untrained) and its final loss.

The population feeds ``bench/classify.py`` and the pruning replays. It is reproducible and can be
extended by anyone:

- network i's parameters are a random draw from the task's search space seeded with
  (population seed, i), and it trains with the seed recorded in its row; one parameter takes
  turns (SMNIST: architecture i mod 8; CharRNN: hidden size i mod the sizes, ``--choices``
  restricts them), so a population cut short stays balanced;
- the file is gzip-compressed JSON lines, one gzip member per network, appended as each
  finishes (``gzip.open`` reads the members back as one stream); a rerun skips the indices
  already there and drops a member torn by a kill;
- every network belongs to one of two parts fixed by its index alone (:func:`part_of`):
  "tune" (models and rules are fitted and tuned on it) and "report" (only reported on), so
  extending a population never moves a network between parts;
- a card beside the file (``<file>.card.json``, rewritten after every network) says which
  settings, data and environment the networks were trained with, how the parts are drawn, how
  many networks each architecture and part holds, and the seconds per network.

The recorder runs torch single-threaded unless ``--threads`` says otherwise, so that results do
not depend on the machine's core count (``bench/probe_precision.py`` measures how far 1 and 2
threads differ).

Usage: python -m bench.population smnist --networks 1000 --set data_dir=/work/shared/data/mnist
       [--set epochs=10 ...] [--out bench/results/population_smnist.jsonl.gz] [--threads 1]
       [--choices hidden=64,128,256] [--shard K/N] [--note "why these settings"]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import optuna
import torch

from tasks import run_trial
from tasks.cli import assignment
from tasks.registry import get
from tasks.smnist import ARCHS

REPORT_SHARE = 0.30
PART_RULE = ("part = 'report' if int.from_bytes(sha256(f'{task}:{index}').digest()[:8], 'big') "
             f"< {REPORT_SHARE} * 2**64 else 'tune'")
# The parameter that takes turns over a task's networks, and its values.
TURNS = {"smnist": ("arch", ARCHS), "charrnn": ("hidden", (64, 128, 256, 512))}
ROUND = len(ARCHS)  # networks per shard round


def _in_share(key: str) -> bool:
    """Whether ``key`` hashes into the first REPORT_SHARE of the range (PART_RULE)."""
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return h < REPORT_SHARE * 2**64


def part_of(task: str, index: int) -> str:
    """The part network ``index`` of ``task`` belongs to ("tune" or "report"), from a hash of
    both alone: deterministic, independent of the population's size, ~30 % "report"."""
    return "report" if _in_share(f"{task}:{index}") else "tune"


def select_part(task: str, index: int) -> str:
    """Within the tune part, where a rule is chosen: "select" (~30 %, studies of the choice
    draw from it) or "fit" (the models of the choice are fitted on it), from another hash."""
    return "select" if _in_share(f"select:{task}:{index}") else "fit"


def network_seed(population_seed: int, index: int) -> int:
    return population_seed * 1_000_003 + index


def params_for(task, index: int, seed: int, choices: dict | None = None) -> dict:
    """Network ``index``'s parameters: a seeded random draw from the task's search space, the
    turn-taking parameter fixed by the index."""
    sampler = optuna.samplers.RandomSampler(seed=network_seed(seed, index))
    trial = optuna.create_study(sampler=sampler).ask()
    fixed = None
    if task.name in TURNS:
        name, values = TURNS[task.name]
        values = tuple((choices or {}).get(name, values))
        fixed = {name: values[index % len(values)]}
    return task.suggest(trial, fixed=fixed)


def machine() -> dict:
    """What decides a network's floating-point results and its speed."""
    from bench.machine import cpu_model

    return {"cpu": cpu_model(), "capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads(),
            "device": "cuda:" + torch.cuda.get_device_name() if torch.cuda.is_available()
            else "cpu"}


def _short(x: float) -> float:
    return float(f"{x:.7g}")


def train_one(task, index: int, seed: int, settings: dict, choices: dict | None = None) -> dict:
    params = params_for(task, index, seed, choices)
    resolved = task.resolve(params, {**settings, "report_initial": True})
    epochs = []

    def record(report):
        epochs.append({
            "epoch": report.epoch, "value": report.value, "train_loss": report.train_loss,
            "seconds": round(report.train_seconds, 4),
            "spectrum_seconds": round(report.spectrum_seconds, 4),
            "spectrum": None if report.spectrum is None
            else [_short(x) for x in report.spectrum],
            "probe_error": report.probe_error,
        })

    start = time.perf_counter()
    trial_seed = network_seed(seed, index)
    outcome = run_trial(task, params, resolved, seed=trial_seed, callback=record)
    return {"index": index, "task": task.name, "part": part_of(task.name, index),
            "population_seed": seed, "seed": trial_seed, "params": params,
            "settings": settings, "choices": choices or {},
            "spectrum_state": resolved.spectrum_state, "spectrum_dtype": resolved.spectrum_dtype,
            "state": outcome.state, "final": outcome.value if outcome.state == "complete" else None,
            "reason": outcome.reason, "seconds": round(time.perf_counter() - start, 3),
            "machine": machine(), "epochs": epochs}


def shard(text: str) -> tuple[int, int]:
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and int(k) < int(n)):
        raise argparse.ArgumentTypeError(f"expected K/N with 0 <= K < N, got {text!r}")
    return int(k), int(n)


def choice_list(text: str) -> tuple[str, list]:
    name, sep, values = text.partition("=")
    if not (sep and name and values):
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,..., got {text!r}")
    return name, [json.loads(v) if v.lstrip("-").replace(".", "", 1).isdigit() else v
                  for v in values.split(",")]


def read_members(path: Path) -> tuple[list[dict], int]:
    """The networks in a population file and the length in bytes of its intact part.

    A ``.gz`` file is read member by member; a torn last member (or line, in a plain JSON-lines
    file), from a kill, is left out of both."""
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    rows: list[dict] = []
    if path.suffix != ".gz":
        good = 0
        for line in data.splitlines(keepends=True):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
            if not line.endswith(b"\n"):
                rows.pop()
                break
            good += len(line)
        return rows, good
    pos = 0
    while pos < len(data):
        d = zlib.decompressobj(wbits=31)
        try:
            text = d.decompress(data[pos:])
        except zlib.error:
            break
        if not d.eof:
            break
        try:
            rows.extend(json.loads(line) for line in text.splitlines() if line.strip())
        except json.JSONDecodeError:
            break
        pos = len(data) - len(d.unused_data)
    return rows, pos


def read(path: Path) -> list[dict]:
    """The networks already in a population file (plain or gzip JSON lines)."""
    return read_members(path)[0]


def card_path(out: Path) -> Path:
    name = out.name.removesuffix(".gz").removesuffix(".jsonl")
    return out.with_name(f"{name}.card.json")


def _seconds(values: list[float]) -> dict:
    if not values:
        return {}
    return {"mean": round(statistics.fmean(values), 2),
            "median": round(statistics.median(values), 2),
            "min": round(min(values), 2), "max": round(max(values), 2)}


def card(task, rows: list[dict], out: Path, settings: dict, args_line: str,
         note: str | None) -> dict:
    """The population's card: what anyone needs to read, trust or extend it."""
    turn = TURNS.get(task.name, (None, ()))[0]
    group = (lambda r: str(r["params"][turn])) if turn else (lambda r: "all")
    by_group: dict[str, Counter] = {}
    for r in rows:
        by_group.setdefault(group(r), Counter())[r["part"]] += 1
        by_group[group(r)][r["state"]] += 1
    probe_nets = [r for r in rows if any(e.get("probe_error") for e in r["epochs"])]
    spectrum_s = sum(e["spectrum_seconds"] for r in rows for e in r["epochs"])
    total_s = sum(r["seconds"] for r in rows)
    machines = Counter(json.dumps({k: v for k, v in r.get("machine", {}).items()},
                                  sort_keys=True) for r in rows)
    full = task.settings({**settings, "report_initial": True}).to_dict()
    data_dir = full.get("data_dir") or full.get("text_path")
    return {
        "task": task.name, "file": out.name, "networks": len(rows),
        "indices": [min((r["index"] for r in rows), default=None),
                    max((r["index"] for r in rows), default=None)],
        "command": args_line,
        "settings": settings, "settings_resolved": full,
        "spectrum_state_per_network": dict(Counter(r.get("spectrum_state") for r in rows)),
        "spectrum_dtype": sorted({r.get("spectrum_dtype") for r in rows} - {None}),
        "data": data_dir or "the data that ships (tasks.data)",
        "note": note,
        "seeds": "network i: parameters drawn by optuna's RandomSampler(seed=population_seed "
                 "* 1000003 + i), trained with run_trial(seed=the same number, recorded as "
                 "'seed'); the turn-taking parameter " + (f"{turn!r} is value i mod the list"
                                                          if turn else "(none)"),
        "parts": {"rule": PART_RULE, "report_share": REPORT_SHARE,
                  "counts": dict(Counter(r["part"] for r in rows)),
                  "use": "tune: fit and tune models and rules; report: only report on"},
        "states": dict(Counter(r["state"] for r in rows)),
        "per_group": {"by": turn or "all",
                      "counts": {k: dict(v) for k, v in sorted(by_group.items())}},
        "probe_errors": {"networks": len(probe_nets),
                         "epochs": sum(1 for r in rows for e in r["epochs"]
                                       if e.get("probe_error"))},
        "seconds_per_network": _seconds([r["seconds"] for r in rows]),
        "seconds_per_network_by_group": {k: _seconds([r["seconds"] for r in rows
                                                      if group(r) == k]) for k in by_group},
        "spectrum_share_of_seconds": round(spectrum_s / total_s, 4) if total_s else None,
        "environment": [{"networks": n, **json.loads(m)} for m, n in machines.most_common()],
        "storage": "gzip JSON lines, one gzip member per network (gzip.open reads them as one "
                   "stream); bench.population.read() also drops a torn last member",
    }


def write_card(path: Path, content: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(content, indent=1) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", choices=["smnist", "charrnn", "signal"])
    ap.add_argument("--networks", type=int, required=True, help="population size")
    ap.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                    help="a task setting, repeatable")
    ap.add_argument("--choices", type=choice_list, action="append", default=[],
                    metavar="NAME=V1,V2", help="the values the turn-taking parameter takes")
    ap.add_argument("--seed", type=int, default=0, help="population seed")
    ap.add_argument("--out", type=Path, help="population file (default bench/results/"
                    "population_TASK.jsonl.gz)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--shard", type=shard, default=(0, 1), metavar="K/N",
                    help=f"train only rounds K, K+N, ... (a round: {ROUND} networks), so N "
                    "processes can share a population file")
    ap.add_argument("--note", help="why these settings and data (kept in the card)")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(args.threads)
    task = get(args.task)
    settings = dict(args.set)
    choices = dict(args.choices)
    task.settings(settings)  # bad settings fail here, before any training
    out = args.out or Path("bench/results") / f"population_{args.task}.jsonl.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    args_line = "python -m bench.population " + " ".join(
        a if " " not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:]))

    done, good = read_members(out)
    for row in done:
        if (row["settings"] != settings or row["task"] != args.task
                or row.get("choices", {}) != choices or row.get("population_seed", 0) != args.seed):
            sys.exit(f"{out} holds networks trained with other settings ({row['settings']}, "
                     f"choices {row.get('choices')}); use another --out")
    if out.exists() and out.stat().st_size > good:  # a torn tail, from a kill
        os.truncate(out, good)
    have = {r["index"] for r in done}
    k, n_shards = args.shard
    todo = [i for i in range(args.networks)
            if i not in have and (i // ROUND) % n_shards == k]
    print(f"{out}: {len(have)} networks recorded, {len(todo)} to train", file=sys.stderr)
    cpath = card_path(out)
    if done:
        write_card(cpath, card(task, done, out, settings, args_line, args.note))
    start = time.perf_counter()
    gz = out.suffix == ".gz"
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for n, index in enumerate(todo, 1):
            row = train_one(task, index, args.seed, settings, choices)
            line = (json.dumps(row) + "\n").encode()
            # one write per network: shards sharing the file never interleave
            os.write(fd, zlib.compress(line, 9, wbits=31) if gz else line)
            done.append(row)
            if n_shards > 1:  # other shards append too: the card counts what the file holds
                done = read(out)
            write_card(cpath, card(task, done, out, settings, args_line, args.note))
            rate = (time.perf_counter() - start) / n
            shown = {k: (round(v, 4) if isinstance(v, float) else v)
                     for k, v in row["params"].items()}
            final = "-" if row["final"] is None else f"{row['final']:.4f}"
            probes = sum(1 for e in row["epochs"] if e["probe_error"])
            print(f"[{n}/{len(todo)}] #{index} {row['part']} {shown} {row['state']} "
                  f"final={final} probe_errors={probes} {row['seconds']:.1f}s, "
                  f"~{rate * (len(todo) - n) / 60:.1f} min left", file=sys.stderr, flush=True)
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
