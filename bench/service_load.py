"""Load on the coordinator: simulated workers posting per-epoch reports with 256-value spectra,
against the same calls made directly through Optuna on the same database.

Service: ``aelle serve`` in its own process on PostgreSQL; ``--workers`` threads each lease a
trial, post reports (epoch, value, spectrum) until told to prune or the last epoch, post the
result, lease again. Direct: the same number of threads each ``study.ask()``, then per epoch
``trial.report`` + the spectrum as a user attribute + ``trial.should_prune()`` (median pruner),
``study.tell``. Sustained reports per second over ``--seconds`` and the latency of each report.

Floor: the Optuna storage calls a coordinator cannot avoid (``ask``, the task's ``suggest``
calls, one ``set_trial_intermediate_value`` per report, ``tell``), from the same number of
threads, with no HTTP, no spectrum and no pruner. Its CPU time per report (the process's, all
threads) bounds what one coordinator process can serve: Python runs one thread at a time, so
reports/s <= 1 s / (CPU per report). The service's CPU per report is measured the same way
(the ``aelle serve`` process, from /proc), so the two compare.

Target: >= 300 reports/s with p99 <= 100 ms on 2 cores, and at most 2x the cost of the direct
Optuna calls.

Usage: python -m bench.service_load [--database postgresql+psycopg://postgres@127.0.0.1/test]
       [--workers 16] [--seconds 20] [--pruner aelle|median|none] [--sampler tpe|random]
       [--out bench/results]
The database must exist; a fresh schema is made in a new database next to it and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import optuna
import psycopg

from service.api import API_PREFIX as PREFIX

# the coordinator refuses tokens under 16 characters and one token for both roles
USER_TOKEN, WORKER_TOKEN = "load-user-token-0001", "load-worker-token-001"

EPOCHS = 20
SIZE = 256


def fresh_database(admin_url: str) -> tuple[str, callable]:
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    admin = psycopg.connect(plain, autocommit=True)
    name = f"aelle_load_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')

    def drop():
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def fake_report(rng, epoch):
    value = float(2.3 * np.exp(-0.1 * epoch) + 0.05 * rng.standard_normal())
    spectrum = np.sort(rng.normal(-0.5, 0.3, SIZE))[::-1]
    return value, spectrum.tolist()


class Recorder:
    """Latencies of the reports, and of the calls around them (leases, results) apart."""

    def __init__(self):
        self.latencies: list[float] = []
        self.other: dict[str, list[float]] = {"lease": [], "result": []}
        self.lock = threading.Lock()
        self.errors = 0

    def add(self, seconds, kind: str = "report"):
        with self.lock:
            (self.latencies if kind == "report" else self.other[kind]).append(seconds)

    def clear(self):
        with self.lock:
            self.latencies.clear()
            for v in self.other.values():
                v.clear()

    def summary(self, seconds: float) -> dict:
        ms = np.asarray(self.latencies) * 1e3
        out = {"reports": len(ms), "per_second": len(ms) / seconds,
               "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
               "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
               "errors": self.errors}
        for kind, values in self.other.items():
            if values:
                out[f"{kind}s"] = len(values)
                out[f"{kind}_p50_ms"] = float(np.percentile(np.asarray(values) * 1e3, 50))
        return out


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default), all its threads."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(worker, workers: int, seconds: float, rec: Recorder, stop: threading.Event,
            pid: int | None = None) -> dict:
    """Run ``workers`` threads of ``worker``; the figures of ``seconds`` after a 3 s warm-up
    (connections, the first trials), with the CPU time per report of process ``pid`` (this
    one by default)."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    time.sleep(3)
    rec.clear()
    t0, cpu0 = time.perf_counter(), cpu_seconds(pid)
    time.sleep(seconds)
    with rec.lock:
        out = rec.summary(time.perf_counter() - t0)
        cpu = cpu_seconds(pid) - cpu0
    out["cpu_ms_per_report"] = 1e3 * cpu / max(out["reports"], 1)
    stop.set()
    for t in threads:
        t.join()
    return out


def sampler_of(name: str) -> optuna.samplers.BaseSampler:
    return (optuna.samplers.RandomSampler(seed=0) if name == "random"
            else optuna.samplers.TPESampler(seed=0))


def service_load(db_url, workers, seconds, pruner, sampler) -> dict:
    port = 18000 + secrets.randbelow(2000)
    env = {**os.environ, "AELLE_DATABASE_URL": db_url, "AELLE_USER_TOKEN": USER_TOKEN,
           "AELLE_WORKER_TOKEN": WORKER_TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "aelle.cli", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    url = f"http://127.0.0.1:{port}{PREFIX}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        spec = {"name": "load", "task": "smnist", "budget": 100_000, "epochs": EPOCHS,
                "settings": {"hidden": SIZE}, "pruner": {"name": pruner},
                "sampler": {"name": sampler, "seed": 0}}
        httpx.post(f"{url}/studies", json=spec, headers={"Authorization": f"Bearer {USER_TOKEN}"},
                   timeout=60).raise_for_status()
        rec, stop = Recorder(), threading.Event()

        def worker(i):
            rng = np.random.default_rng(i)
            with httpx.Client(base_url=url, timeout=60,
                              headers={"Authorization": f"Bearer {WORKER_TOKEN}"}) as c:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    lease = c.post("/leases", json={"worker": f"load{i}"}).json()
                    rec.add(time.perf_counter() - t0, "lease")
                    tid, token = lease["trial_id"], lease["token"]
                    state = "complete"
                    for epoch in range(EPOCHS + 1):
                        value, spectrum = fake_report(rng, epoch)
                        t0 = time.perf_counter()
                        r = c.post(f"/trials/{tid}/reports", json={
                            "lease": token, "epoch": epoch, "value": value,
                            "spectrum": spectrum})
                        if r.status_code != 200:
                            rec.errors += 1
                            break
                        rec.add(time.perf_counter() - t0)
                        if r.json()["decision"] == "prune" or stop.is_set():
                            state = "pruned"
                            break
                    t0 = time.perf_counter()
                    c.post(f"/trials/{tid}/result", json={"lease": token, "state": state,
                                                          "value": value})
                    rec.add(time.perf_counter() - t0, "result")

        return measure(worker, workers, seconds, rec, stop, pid=proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def direct_load(db_url, workers, seconds, sampler) -> dict:
    storage = optuna.storages.RDBStorage(db_url, engine_kwargs={"pool_size": workers + 4})
    study = optuna.create_study(study_name="direct", storage=storage, sampler=sampler_of(sampler),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5))
    rec, stop = Recorder(), threading.Event()

    def worker(i):
        rng = np.random.default_rng(100 + i)
        while not stop.is_set():
            t0 = time.perf_counter()
            trial = study.ask()
            rec.add(time.perf_counter() - t0, "lease")
            value = 0.0
            pruned = False
            for epoch in range(EPOCHS + 1):
                value, spectrum = fake_report(rng, epoch)
                t0 = time.perf_counter()
                trial.report(value, epoch)
                trial.set_user_attr(f"spectrum:{epoch}", spectrum)
                pruned = trial.should_prune()
                rec.add(time.perf_counter() - t0)
                if pruned or stop.is_set():
                    break
            t0 = time.perf_counter()
            study.tell(trial, state=optuna.trial.TrialState.PRUNED if pruned else None,
                       values=None if pruned else value)
            rec.add(time.perf_counter() - t0, "result")

    return measure(worker, workers, seconds, rec, stop)


def floor_load(db_url, workers, seconds, sampler) -> dict:
    """Only the Optuna calls that every coordinator makes for a trial; CPU of this process."""
    from tasks import get

    task = get("smnist")
    storage = optuna.storages.RDBStorage(db_url, engine_kwargs={"pool_size": workers + 4})
    study = optuna.create_study(study_name="floor", storage=storage, sampler=sampler_of(sampler))
    rec, stop = Recorder(), threading.Event()

    def worker(i):
        rng = np.random.default_rng(200 + i)
        while not stop.is_set():
            t0 = time.perf_counter()
            trial = study.ask()
            task.suggest(trial)
            rec.add(time.perf_counter() - t0, "lease")
            value = 0.0
            epochs = int(rng.integers(1, EPOCHS + 2))  # pruned somewhere, as under a pruner
            for epoch in range(epochs):
                value, _ = fake_report(rng, epoch)
                t0 = time.perf_counter()
                storage.set_trial_intermediate_value(trial._trial_id, epoch, value)
                rec.add(time.perf_counter() - t0)
                if stop.is_set():
                    break
            t0 = time.perf_counter()
            study.tell(trial, value)
            rec.add(time.perf_counter() - t0, "result")

    return measure(worker, workers, seconds, rec, stop)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--pruner", default="aelle", choices=["aelle", "median", "none"])
    ap.add_argument("--sampler", default="tpe", choices=["tpe", "random"])
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = {}
    paths = {"service": lambda url: service_load(url, args.workers, args.seconds, args.pruner,
                                                 args.sampler),
             "direct": lambda url: direct_load(url, args.workers, args.seconds, args.sampler),
             "optuna floor": lambda url: floor_load(url, args.workers, args.seconds,
                                                    args.sampler)}
    for name, run in paths.items():
        url, drop = fresh_database(args.database)
        try:
            results[name] = run(url)
        finally:
            drop()
        r = results[name]
        print(f"{name}: {r['reports']} reports, {r['per_second']:.1f}/s, p50 "
              f"{r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, errors {r['errors']}, "
              f"{r['cpu_ms_per_report']:.2f} ms CPU per report; "
              f"{r.get('leases', 0)} leases (p50 {r.get('lease_p50_ms', 0):.1f} ms), "
              f"{r.get('results', 0)} results (p50 {r.get('result_p50_ms', 0):.1f} ms)",
              flush=True)
    ratio = results["direct"]["per_second"] / max(results["service"]["per_second"], 1e-9)
    lines = ["# Coordinator load", "",
             f"{args.workers} simulated workers, {SIZE}-value spectra, {EPOCHS + 1} reports per "
             f"trial at most, pruner {args.pruner}, sampler {args.sampler}; PostgreSQL; "
             f"{args.seconds:.0f} s measured after 3 s of warm-up; {platform.machine()}, "
             f"{os.cpu_count()} cores.", "",
             "| path | reports/s | p50 | p99 | errors | CPU per report | trials started (p50 of "
             "a lease / ask) | trials ended (p50 of a result / tell) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['per_second']:.1f} | {r['p50_ms']:.1f} ms | "
                     f"{r['p99_ms']:.1f} ms | {r['errors']} | "
                     f"{r['cpu_ms_per_report']:.2f} ms | {r.get('leases', 0)} "
                     f"({r.get('lease_p50_ms', 0):.1f} ms) | {r.get('results', 0)} "
                     f"({r.get('result_p50_ms', 0):.1f} ms) |")
    bound = 1e3 / results["optuna floor"]["cpu_ms_per_report"]
    lines += ["", f"Cost of the service relative to direct Optuna calls: {ratio:.2f}x "
              "(target <= 2x); target >= 300 reports/s with p99 <= 100 ms.",
              f"The Optuna calls alone cost {results['optuna floor']['cpu_ms_per_report']:.2f} ms "
              f"of CPU per report (ask, suggest and tell shared over the trial's reports): one "
              f"Python process making them serves at most {bound:.0f} reports/s, whatever else "
              "it does. CPU per report: the measured process's user + system time over the "
              "reports it served (service: the `aelle serve` process; direct and floor: the "
              "benchmark's own)."]
    report = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "service_load" if args.sampler == "tpe" else f"service_load_{args.sampler}"
    (args.out / f"{stem}.json").write_text(json.dumps(
        {"workers": args.workers, "seconds": args.seconds, "pruner": args.pruner,
         "sampler": args.sampler,
         "results": results, "cost_ratio": ratio, "floor_bound_reports_per_second": bound},
        indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
