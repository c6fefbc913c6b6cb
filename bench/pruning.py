"""Compute saved at equal quality: AeLLE against the pruners people use, run through the service.

For one task, every pruner variant (``bench.rules``) runs the same study (random sampler with
the same seed, so trial n has the same parameters and, trained with seed n, the same curve in
every study; the same trial budget and epochs per trial) on a real coordinator (SQLite) with
real worker processes. The reference study of each seed prunes nothing and records what AeLLE
would have decided (shadow mode): it is the "none" row and tells, for every trial another
pruner stopped, the final value the trial would have reached. ``bench.accounting`` scores each
study against it; ``bench.pruning_report`` writes the report.

Resumable: each finished study is one JSON line in ``bench/results/pruning_<task>.jsonl``;
rerunning skips them (the studies live in ``.pruning/<task>.db`` beside that file, which the
pre-trained variant needs). ``--report`` only rewrites the report and plots from the lines.

Trial n is the same network in every study only where the floating-point results are the same:
another CPU (MKL and torch pick kernels by the instruction set) or other library versions train
the same trial to another curve. So every line records the environment it ran in
(``bench.machine.environment``); a run resumes only the lines of its own environment, and the
report uses the environment of the newest line alone. Each scored study also counts the trials
that it and its reference both completed with different final values ("unreproduced"), which
must be 0.

Usage: python -m bench.pruning smnist [--seeds 3] [--trials N] [--epochs E] [--workers 2]
       [--variants none,aelle,...] [--full] [--data ../shared/data] [--report]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from aelle.pruners import ATTR
from bench.accounting import read_lines
from bench.machine import environment
from bench.pruning_report import report
from bench.rules import VARIANTS, service_pruner
from service.api import API_PREFIX as PREFIX
from service.config import ServiceSettings
from service.local import local_coordinator, spawn_workers

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def presets(data: Path) -> dict:
    """Per task: CPU sizes and --full sizes (the dissertation's networks, for a GPU)."""
    mnist, text = str(data / "mnist"), str(data / "warpeace_input.txt")
    probe = {"spectrum_sequences": 8, "spectrum_steps": 56, "spectrum_warmup": 28}
    return {
        "smnist": {
            "cpu": {"trials": 48, "epochs": 8, "space": None,
                    "settings": {"data_dir": mnist, "train_size": 4000, "val_size": 1000,
                                 "hidden": 48, "lr": 3e-3, **probe}},
            "full": {"trials": 100, "epochs": 10, "space": None,
                     "settings": {"data_dir": mnist, "hidden": 64}},
        },
        "charrnn": {
            "cpu": {"trials": 40, "epochs": 8,
                    "space": {"hidden": {"type": "categorical", "choices": [32, 64, 128]}},
                    "settings": {"text_path": text, "max_chars": 400_000, "subset": 0.3,
                                 "spectrum_sequences": 5, "spectrum_steps": 60}},
            "full": {"trials": 60, "epochs": 15, "space": None,
                     "settings": {"text_path": text}},
        },
        "signal": {
            "cpu": {"trials": 48, "epochs": 8, "space": None,
                    "settings": {"hidden": 192, "steps": 1000, "spectrum_sequences": 4,
                                 "spectrum_steps": 150}},
            "full": {"trials": 60, "epochs": 15, "space": None, "settings": {}},
        },
    }


def study_name(task: str, variant: str, seed: int) -> str:
    return f"{task}-{variant}-s{seed}"


class Bench:
    def __init__(self, task: str, preset: dict, args):
        self.task, self.preset, self.args = task, preset, args
        self.out = args.out or RESULTS / f"pruning_{task}.jsonl"
        self.env = environment()
        lines = read_lines(self.out)
        self.done = {(r["variant"], r["seed"]): r for r in lines if r.get("env") == self.env}
        foreign = {(r["variant"], r["seed"]) for r in lines} - set(self.done)
        if foreign:
            print(f"{task}: {len(foreign)} studies recorded in another environment are run "
                  f"again here ({json.dumps(self.env)})", flush=True)

    def run(self) -> None:
        work = self.out.parent / ".pruning"  # the studies live beside their lines
        work.mkdir(parents=True, exist_ok=True)
        user, worker = secrets.token_hex(16), secrets.token_hex(16)
        settings = ServiceSettings(database_url=f"sqlite:///{work}/{self.task}.db",
                                   user_token=user, worker_token=worker,
                                   heartbeat_interval=10, grace_period=60)
        # references first: the pre-trained variant learns from another seed's reference
        order = [(v, s) for v in self.args.variants if v == "none" for s in range(self.args.seeds)]
        order += [(v, s) for s in range(self.args.seeds) for v in self.args.variants
                  if v != "none"]
        todo = [key for key in order if key not in self.done]
        print(f"{self.task}: {len(order) - len(todo)} of {len(order)} studies recorded in "
              f"{self.out}", flush=True)
        if not todo:
            return
        with local_coordinator(settings) as url:
            api = httpx.Client(base_url=url + PREFIX, timeout=120,
                               headers={"Authorization": f"Bearer {user}"})
            self.stop_unrecorded(api)
            for i, (variant, seed) in enumerate(todo, 1):
                print(f"[{i}/{len(todo)}] {self.task} {variant} seed {seed}", flush=True)
                self.record(api, url, worker, variant, seed)

    def record(self, api, url, worker, variant, seed) -> dict:
        """Run one study and append it to the lines (a later line for the same variant and
        seed replaces an earlier one)."""
        record = self.study(api, url, worker, variant, seed)
        with self.out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        self.done[(variant, seed)] = record
        return record

    def stop_unrecorded(self, api: httpx.Client) -> None:
        """A study an interrupted run left behind would take the workers' leases: stop it."""
        recorded = {r["study"] for r in self.done.values()}
        for s in api.get("/studies").raise_for_status().json()["data"]:
            if s["name"] not in recorded and not s["stopped"]:
                api.post(f"/studies/{s['name']}/stop").raise_for_status()

    def study(self, api: httpx.Client, url: str, worker: str, variant: str, seed: int) -> dict:
        p, args = self.preset, self.args
        name = study_name(self.task, variant, seed)
        existing = {s["name"] for s in api.get("/studies").json()["data"]}
        attempt = 1
        while (name if attempt == 1 else f"{name}-r{attempt}") in existing:
            attempt += 1
        actual = name if attempt == 1 else f"{name}-r{attempt}"
        spec = {"name": actual, "task": self.task, "budget": p["trials"],
                "epochs": p["epochs"], "settings": p["settings"],
                "sampler": {"name": "random", "seed": seed},
                "pruner": service_pruner(variant, p["epochs"])}
        if p["space"]:
            spec["search_space"] = p["space"]
        if variant.startswith("aelle_pre"):  # the source may itself have been a retried attempt
            source = self.done.get(("none", (seed + 1) % args.seeds))
            if source is None:
                raise SystemExit("aelle_pre needs the reference ('none') of the next seed")
            if source["study"] not in existing:  # its database was removed: run it again
                print(f"  the reference {source['study']} is not in the database: running it "
                      "again for its model", flush=True)
                source = self.record(api, url, worker, "none", source["seed"])
            spec["pruner"]["settings"]["pretrained"] = source["study"]
        r = api.post("/studies", json=spec)
        if r.status_code != 201:
            raise SystemExit(f"could not create {actual}: {r.status_code} {r.text}")
        start = time.perf_counter()
        with contextlib.ExitStack() as files:
            # their logs go to files: a pipe read only at the end could fill up and block them
            logs = [files.enter_context(tempfile.TemporaryFile(mode="w+"))
                    for _ in range(args.workers)]
            procs = spawn_workers(url, worker, args.workers, prefix="bench", logs=logs,
                                  env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                                  cwd=ROOT, stdout=subprocess.DEVNULL, text=True)
            self.progress(api, actual, procs, start)
            errors = [tail(log) for p, log in zip(procs, logs, strict=True) if p.wait() != 0]
        seconds = time.perf_counter() - start
        if errors:
            raise SystemExit(f"a worker failed in {actual}:\n" + "\n".join(errors))
        summary = api.get(f"/studies/{actual}").json()
        trials = api.get(f"/studies/{actual}/trials", params={"order": "number"}).json()["data"]
        rows = [trial_record(t, api.get(f"/studies/{actual}/trials/{t['number']}").json()
                             if variant == "none" else None) for t in trials]
        return {"task": self.task, "variant": variant, "seed": seed, "study": actual,
                "spec": spec, "seconds": round(seconds, 1), "counts": summary["counts"],
                "env": self.env, "trials": rows}

    def progress(self, api, name, procs, start) -> None:
        tty = sys.stdout.isatty()
        last = ""
        while any(p.poll() is None for p in procs):
            time.sleep(2.0)
            try:
                s = api.get(f"/studies/{name}").json()
            except httpx.HTTPError:
                continue
            c = s["counts"]
            state = (f"  {name}: {s['used']}/{s['budget']} trials leased, "
                     f"{c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned")
            line = f"{state}, {s['epochs_trained']} reports, {time.perf_counter() - start:.0f} s"
            if tty or state != last:
                print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
                last = state
        if tty:
            print(flush=True)


def tail(log, chars: int = 2000) -> str:
    log.seek(0)
    return log.read()[-chars:]


def trial_record(t: dict, detail: dict | None) -> dict:
    row = {k: t[k] for k in ("number", "state", "value", "last_value", "params", "epochs",
                             "max_le", "mean_le", "prediction", "reason", "retry_of",
                             "started_at", "finished_at")}
    if detail is not None:  # the reference: what AeLLE would have decided, and when
        attrs = detail["user_attrs"]
        row["shadow_first_prune"] = attrs.get(f"{ATTR}shadow_first_prune_step")
        row["shadow_max_le"] = {str(r["epoch"]): float(np.max(r["spectrum"]))
                                for r in detail["reports"] if r["spectrum"]}
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", choices=("smnist", "charrnn", "signal"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, help="trials per study (default: the preset's)")
    ap.add_argument("--epochs", type=int, help="epochs per trial (default: the preset's)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--full", action="store_true", help="the dissertation's sizes (a GPU)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, help="the JSON-lines file (default bench/results/"
                    "pruning_<task>.jsonl, or _full)")
    ap.add_argument("--report", action="store_true", help="only write the report and plots")
    args = ap.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    if args.seeds < 1 or args.workers < 1:
        ap.error("--seeds and --workers must be >= 1")
    if "aelle_pre" in args.variants and args.seeds < 2:
        ap.error("aelle_pre learns from another seed's reference: it needs --seeds >= 2")
    suffix = "_full" if args.full else ""
    args.out = args.out or RESULTS / f"pruning_{args.task}{suffix}.jsonl"
    preset = dict(presets(args.data)[args.task]["full" if args.full else "cpu"])
    if args.trials:
        preset["trials"] = args.trials
    if args.epochs:
        preset["epochs"] = args.epochs
    if not args.report:
        if not args.data.is_dir():
            ap.error(f"--data {args.data} is not a directory (the benchmark's data)")
        Bench(args.task, preset, args).run()
    records = read_lines(args.out)
    if not records:
        ap.error(f"{args.out} has no finished study yet")
    stem = args.out.with_suffix("")
    summary = report(args.task, records, stem.with_suffix(".md"), stem.with_suffix(".png"))
    print(stem.with_suffix(".md").read_text())
    return 0 if summary["table"] else 1


if __name__ == "__main__":
    sys.exit(main())
