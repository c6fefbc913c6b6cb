"""The engine and the task zoo measured on a GPU, with the CPU figure for the spectra beside it.

Four measurements, in order, each within its share of an overall time limit (``--time-limit``,
540 s by default, so that the run ends within 10 minutes; a watchdog writes what was measured
and exits if a call overruns it):

1. Spectra: throughput (spectra per second) of M stacked networks (GRU; LSTM in the
   dissertation's dh/dh convention, N exponents) at N in {64, 256, 1024}, M up to 256, float32,
   full spectrum, B = 10 sequences of W = 10 + T = 100 steps, T_ON = 1, on the device and on the
   CPU with ``--cpu-threads`` torch threads (2: the project's CPU) at M = 1 and 64. M grows by
   4x until a call would take longer than its cap or the memory runs out. At N = 256, M = 64
   the GPU is timed a second time with the full frame kept as Householder reflectors (the
   CPU's choice; see aelle/frames.py), to check the device's default.
2. Dissertation sizes: one epoch plus the spectrum after it for each task (SMNIST GRU, N = 64,
   on MNIST's 60,000 + 10,000 images when ``--shared`` holds both halves, otherwise on
   MNIST-shaped random images of the same count: an epoch's cost depends on the shapes only;
   CharRNN N = 256 on War and Peace or the reference manual; signal N = 512, 1,200 steps).
3. Trials on one GPU: c concurrent SMNIST trials, one thread each as the worker runs them,
   c = 1, 2, 4, 8, ..., until the throughput (trial-epochs per second) stops rising; each
   trial's epoch time against a lone trial's.
4. A short population recording (bench.population's networks) with the time left.

Usage: python -m bench.gpu [--device cuda] [--quick] [--time-limit 540] [--out bench/results]
       [--shared ../shared/data] [--cpu-threads 2]
``--quick`` shrinks every size so that ``--device cpu --quick`` runs in well under a minute (a
smoke test of the script). Writes gpu.json and gpu.md under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from aelle import frames, lyapunov_spectrum
from aelle.cells.gru import GRUCell
from aelle.cells.lstm import LSTMCell
from bench.machine import describe
from tasks import run_trial

TARGET_SPEEDUP = 50          # GPU over the 2-core CPU at N = 256, M = 64
TARGET_CONCURRENT = 16       # SMNIST trials on one GPU, each epoch within 2x of a lone one

# The CPU's cost per network barely changes with M, so the CPU is timed at M = 1 and at the
# target's M = 64 only, the target's N first.
FULL = {"sizes": (64, 256, 1024), "networks": (1, 4, 16, 64, 256), "cpu_sizes": (256, 64),
        "cpu_networks": (1, 64), "batch": 10, "warmup": 10, "steps": 100, "call_cap": 40.0,
        "cpu_call_cap": 60.0, "concurrency": (1, 2, 4, 8, 16, 24, 32, 48, 64),
        "trial": {"hidden": 64, "train_size": 4096, "val_size": 1024, "batch_size": 128,
                  "epochs": 2, "spectrum_sequences": 32, "spectrum_steps": 112,
                  "spectrum_warmup": 28},
        "images": (60_000, 10_000), "charrnn_hidden": 256, "signal_hidden": 512,
        "signal_steps": 1200}
QUICK = {"sizes": (16, 32), "networks": (1, 4), "cpu_sizes": (16, 32), "cpu_networks": (1, 4),
         "batch": 3, "warmup": 2, "steps": 10, "call_cap": 20.0, "cpu_call_cap": 20.0,
         "concurrency": (1, 2),
         "trial": {"hidden": 8, "train_size": 128, "val_size": 64, "batch_size": 64,
                   "epochs": 1, "spectrum_sequences": 2, "spectrum_steps": 10,
                   "spectrum_warmup": 2},
         "images": (256, 128), "charrnn_hidden": 16, "signal_hidden": 32, "signal_steps": 100}
# shares of the time limit: spectra (device, then CPU), tasks, concurrency; the rest: population
SHARES = {"spectra": 0.25, "cpu_spectra": 0.25, "tasks": 0.15, "concurrency": 0.25}


class Clock:
    """The run's deadline and each section's."""

    def __init__(self, limit: float):
        self.start = time.monotonic()
        self.limit = limit

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.limit - self.elapsed()

    def section(self, share: float) -> float:
        """A deadline (monotonic) for a section that may use ``share`` of the limit, never past
        the run's own."""
        return min(time.monotonic() + share * self.limit, self.start + self.limit)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    """Wall seconds of one ``fn()``, the device's queue drained before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


# ---- 1. spectra ----------------------------------------------------------------------------

def stacked(arch: str, n: int, m: int, device: str):
    g = torch.Generator().manual_seed(n * 1000 + m)
    if arch == "gru":
        cell = GRUCell.random(10, n, p=0.3, n_networks=m, generator=g, dtype=torch.float32)
    else:
        cell = LSTMCell.random(10, n, p=0.3, n_networks=m, generator=g, dtype=torch.float32,
                               state="hidden")
    return cell.to(device=device)


def spectrum_call(arch, n, m, device, cfg, reflectors=False):
    cell = stacked(arch, n, m, device)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(cfg["batch"], cfg["warmup"] + cfg["steps"], 10, generator=g).to(device)
    patch = {torch.device(device).type: 40} if reflectors else {}

    def run():
        with mock.patch.dict(frames.REFLECTORS_FROM, patch):
            lyapunov_spectrum(cell, x, warmup=cfg["warmup"], dtype=torch.float32)

    return run


def spectra(device: str, cfg: dict, sizes, networks, cap: float, deadline: float,
            label: str) -> list[dict]:
    """Rows of (arch, N, M, seconds, spectra/s); M grows while a call fits its cap."""
    rows = []
    timed(spectrum_call("gru", sizes[0], 1, device, cfg), device)  # warm up: kernels, handles
    for n in sizes:
        for arch in ("gru", "lstm"):
            last = None  # (M, seconds) of the previous call
            for m in networks:
                row = {"device": label, "arch": arch, "N": n, "M": m}
                predicted = None if last is None else last[1] * m / last[0]
                if predicted is not None and predicted > cap:
                    rows.append({**row, "skipped": f"predicted {predicted:.0f} s > cap"})
                    break
                if time.monotonic() + (predicted or 0) > deadline:
                    rows.append({**row, "skipped": "time limit"})
                    break
                try:
                    s = timed(spectrum_call(arch, n, m, device, cfg), device)
                except torch.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    rows.append({**row, "skipped": "out of memory"})
                    break
                rows.append({**row, "seconds": s, "spectra_per_s": m / s})
                print(f"spectra {label:6s} {arch} N={n:5d} M={m:4d}: {s:8.3f} s, "
                      f"{m / s:9.2f} spectra/s", flush=True)
                last = (m, s)
                if s > cap:
                    break
    return rows


def reflector_check(device: str, cfg: dict, deadline: float) -> list[dict]:
    """The target point timed with the CPU's reflector frame on the device too."""
    n, m = (256, 64) if cfg is FULL else (cfg["sizes"][-1], cfg["networks"][-1])
    rows = []
    for arch in ("gru", "lstm"):
        if time.monotonic() > deadline:
            break
        try:
            s = timed(spectrum_call(arch, n, m, device, cfg, reflectors=True), device)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            continue
        rows.append({"arch": arch, "N": n, "M": m, "seconds": s, "spectra_per_s": m / s})
        print(f"spectra reflectors {arch} N={n} M={m}: {s:.3f} s", flush=True)
    return rows


def speedup(rows: list[dict], n: int, m: int) -> dict:
    """The device's spectra per second over the CPU's at (N, M), per architecture."""
    out = {}
    for arch in ("gru", "lstm"):
        got = {r["device"]: r["spectra_per_s"] for r in rows
               if r["arch"] == arch and r["N"] == n and r["M"] == m and "spectra_per_s" in r}
        if "device" in got and "cpu" in got:
            out[arch] = got["device"] / got["cpu"]
    return out


# ---- 2. dissertation sizes -----------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                    *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def mnist_dir(shared: Path | None, counts: tuple[int, int], scratch: Path) -> tuple[str, str]:
    """A folder with MNIST's two halves: the real one when ``shared`` has both, else random
    images of MNIST's shape and counts (the epoch's cost depends on the shapes only)."""
    real = shared / "mnist" if shared else None
    if real and all(any((real / f"{s}-images-idx3-ubyte{z}").exists() for z in ("", ".gz"))
                    for s in ("train", "t10k")):
        return str(real), "MNIST 60,000 + 10,000"
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "t10k"), counts, strict=True):
        write_idx(scratch / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(scratch / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n))
    return str(scratch), f"random MNIST-shaped {counts[0]:,} + {counts[1]:,}"


def task_sizes(device: str, cfg: dict, shared: Path | None, deadline: float) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        data_dir, data = mnist_dir(shared, cfg["images"], Path(scratch))
        text = shared / "warpeace_input.txt" if shared else None
        text = str(text) if text and text.is_file() else None
        quick = cfg is QUICK
        jobs = [
            ("smnist", f"GRU N={8 if quick else 64}, {data}", {"arch": "gru", "p_gru": 0.5},
             {"data_dir": data_dir, "hidden": 8 if quick else 64}),
            ("charrnn", f"LSTM N={cfg['charrnn_hidden']}, "
             + ("War and Peace" if text else "reference manual"),
             {"hidden": cfg["charrnn_hidden"], "p": 0.1, "lr": 2e-3, "dropout": 0.1},
             {"text_path": text, **({"max_chars": 20_000, "spectrum_steps": 20} if quick
                                    else {})}),
            ("signal", f"FORCE N={cfg['signal_hidden']}, {cfg['signal_steps']} steps",
             {"g": 1.4, "connectivity": 0},
             {"hidden": cfg["signal_hidden"], "steps": cfg["signal_steps"],
              **({"spectrum_steps": 20} if quick else {})}),
        ]
        for task, label, params, settings in jobs:
            if time.monotonic() > deadline:
                rows.append({"task": task, "config": label, "skipped": "time limit"})
                continue
            reports = []
            settings = {**settings, "epochs": 1, "device": device}
            t0 = time.perf_counter()
            out = run_trial(task, params, settings, seed=0, callback=reports.append)
            last = reports[-1]
            rows.append({"task": task, "config": label, "state": out.state,
                         "epoch_s": last.train_seconds, "validation_s": reports[0].train_seconds,
                         "spectrum_s": last.spectrum_seconds, "exponents": len(last.spectrum),
                         "wall_s": time.perf_counter() - t0})
            print(f"task {task:8s} {label}: epoch {last.train_seconds:.2f} s, spectrum "
                  f"{last.spectrum_seconds:.2f} s", flush=True)
    return rows


# ---- 3. trials on one GPU ------------------------------------------------------------------

def concurrent_trials(c: int, device: str, cfg: dict, data_dir: str) -> dict:
    """c SMNIST trials at once, one thread each; their mean epoch time and the throughput."""
    settings = {**cfg["trial"], "data_dir": data_dir, "device": device, "report_initial": False}
    epochs: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def one(i: int):
        try:
            out = run_trial("smnist", {"arch": "gru", "p_gru": 0.5}, settings, seed=i)
            with lock:
                epochs.extend(r.train_seconds + r.spectrum_seconds for r in out.reports)
        except Exception as e:  # a failed trial is a finding, not a crash of the benchmark
            with lock:
                errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(c)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    row = {"concurrent": c, "wall_s": wall, "epochs": len(epochs),
           "epoch_s": float(np.mean(epochs)) if epochs else None,
           "trial_epochs_per_s": len(epochs) / wall}
    if errors:
        row["errors"] = errors[:3]
    return row


def concurrency(device: str, cfg: dict, deadline: float) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        train, val = cfg["trial"]["train_size"], cfg["trial"]["val_size"]
        data_dir, _ = mnist_dir(None, (train, val), Path(scratch))
        best, flat = 0.0, 0
        for c in cfg["concurrency"]:
            # at worst the wall time grows in proportion to the trials
            predicted = rows[-1]["wall_s"] * c / rows[-1]["concurrent"] if rows else 0.0
            if time.monotonic() + predicted > deadline:
                rows.append({"concurrent": c, "skipped": "time limit"})
                break
            row = concurrent_trials(c, device, cfg, data_dir)
            if rows and rows[0]["epoch_s"] and row["epoch_s"]:
                row["epoch_vs_lone"] = row["epoch_s"] / rows[0]["epoch_s"]
            rows.append(row)
            print(f"trials x{c:3d}: {row['trial_epochs_per_s']:.2f} trial-epochs/s, epoch "
                  f"{row['epoch_s'] or float('nan'):.2f} s", flush=True)
            rate = row["trial_epochs_per_s"]
            flat = flat + 1 if rate < 1.05 * best else 0
            best = max(best, rate)
            if flat >= 2:  # two steps without a 5 % gain: throughput stopped rising
                break
    return rows


def concurrency_summary(rows: list[dict]) -> dict:
    done = [r for r in rows if "trial_epochs_per_s" in r and not r.get("errors")]
    if not done:
        return {}
    peak = max(done, key=lambda r: r["trial_epochs_per_s"])
    within = [r["concurrent"] for r in done if r.get("epoch_vs_lone", 1.0) <= 2.0]
    return {"peak_concurrent": peak["concurrent"],
            "peak_trial_epochs_per_s": peak["trial_epochs_per_s"],
            "most_within_2x": max(within) if within else None}


# ---- 4. population -------------------------------------------------------------------------

def population(device: str, cfg: dict, deadline: float) -> dict:
    """bench.population's SMNIST networks, one after another, until the deadline."""
    from bench.population import train_one
    from tasks import get

    settings = {**cfg["trial"], "device": device, "epochs": 3 if cfg is FULL else 1}
    with tempfile.TemporaryDirectory() as scratch:
        train, val = cfg["trial"]["train_size"], cfg["trial"]["val_size"]
        settings["data_dir"], data = mnist_dir(None, (train, val), Path(scratch))
        seconds, states = [], []
        t0 = time.perf_counter()
        while time.monotonic() + (max(seconds) if seconds else 0) < deadline:
            row = train_one(get("smnist"), len(seconds), 0, settings, {})
            seconds.append(row["seconds"])
            states.append(row["state"])
            if cfg is QUICK and len(seconds) >= 2:
                break
        wall = time.perf_counter() - t0
    return {"networks": len(seconds), "epochs": settings["epochs"], "wall_s": wall,
            "networks_per_min": 60 * len(seconds) / wall if seconds else 0.0,
            "states": {s: states.count(s) for s in set(states)}, "data": data}


# ---- report --------------------------------------------------------------------------------

def markdown(r: dict) -> str:
    lines = [f"# GPU ({r['device']})", "", f"Command: `{r['command']}`", "",
             f"GPU: {r['gpu']}; CPU: {r['cpu']}; torch {r['torch']}; CPU figures with "
             f"{r['cpu_threads']} torch threads."
             + (" Quick sizes (a smoke test)." if r["quick"] else ""),
             f"Ran {r['elapsed_s']:.0f} s of a {r['time_limit_s']:.0f} s limit"
             + (" (cut short by the watchdog)." if r.get("cut_short") else "."), "",
             "## Spectra", "",
             f"M stacked networks, float32, full spectrum, B = {r['config']['batch']}, "
             f"W = {r['config']['warmup']}, T = {r['config']['steps']}, T_ON = 1; LSTM in the "
             "dh/dh convention. Spectra per second (one call's M over its seconds).", "",
             f"device: {r['device']}; cpu: the CPU with {r['cpu_threads']} torch threads.", "",
             "| where | arch | N | M | seconds | spectra/s |", "|---|---|---|---|---|---|"]
    for row in r.get("spectra", []):
        if "skipped" in row:
            lines.append(f"| {row['device']} | {row['arch']} | {row['N']} | {row['M']} | "
                         f"skipped: {row['skipped']} | |")
        else:
            lines.append(f"| {row['device']} | {row['arch']} | {row['N']} | {row['M']} | "
                         f"{row['seconds']:.3f} | {row['spectra_per_s']:.2f} |")
    sp, at = r.get("speedup", {}), r.get("speedup_at")
    if at:
        lines += ["", f"Device over CPU at N = {at[0]}, M = {at[1]} (target at N = 256, "
                  f"M = 64: ≥ {TARGET_SPEEDUP}×): "
                  + (", ".join(f"{a} {v:.1f}×" for a, v in sp.items()) or "not measured") + "."]
    for row in r.get("reflectors", []):
        lines.append(f"With the reflector frame on the GPU, {row['arch']} N = {row['N']}, "
                     f"M = {row['M']}: {row['seconds']:.3f} s ({row['spectra_per_s']:.2f} "
                     "spectra/s).")
    lines += ["", "## Dissertation sizes", "",
              "| task | config | epoch (train + validation) | validation | spectrum | exponents |",
              "|---|---|---|---|---|---|"]
    for row in r.get("tasks", []):
        if "skipped" in row:
            lines.append(f"| {row['task']} | {row['config']} | skipped: {row['skipped']} | | | |")
        else:
            lines.append(f"| {row['task']} | {row['config']} | {row['epoch_s']:.2f} s | "
                         f"{row['validation_s']:.2f} s | {row['spectrum_s']:.2f} s | "
                         f"{row['exponents']} |")
    lines += ["", "## Trials on one device", "",
              f"SMNIST GRU trials ({r['config']['trial']}), one thread each. Epoch: training, "
              "validation and the spectrum after it.", "",
              "| concurrent | wall | trial-epochs/s | epoch | epoch / lone |",
              "|---|---|---|---|---|"]
    for row in r.get("concurrency", []):
        if "skipped" in row:
            lines.append(f"| {row['concurrent']} | skipped: {row['skipped']} | | | |")
            continue
        ratio = f"{row['epoch_vs_lone']:.2f}" if "epoch_vs_lone" in row else "1"
        epoch = f"{row['epoch_s']:.2f} s" if row["epoch_s"] is not None else "-"
        err = f" (errors: {row['errors'][0]})" if row.get("errors") else ""
        lines.append(f"| {row['concurrent']} | {row['wall_s']:.1f} s | "
                     f"{row['trial_epochs_per_s']:.2f} | {epoch}{err} | {ratio} |")
    s = r.get("concurrency_summary", {})
    if s:
        lines += ["", f"Throughput peaks at {s['peak_concurrent']} concurrent trials "
                  f"({s['peak_trial_epochs_per_s']:.2f} trial-epochs/s); at most "
                  f"{s['most_within_2x']} ran with each epoch within 2× of a lone trial's "
                  f"(target ≥ {TARGET_CONCURRENT})."]
    p = r.get("population")
    lines += ["", "## Population", ""]
    lines.append(f"{p['networks']} SMNIST networks of {p['epochs']} epochs on {p['data']} in "
                 f"{p['wall_s']:.0f} s: {p['networks_per_min']:.1f} networks/min, {p['states']}."
                 if p else "Not run: no time left.")
    return "\n".join(lines) + "\n"


class Report:
    """The result so far, written once: at the end, or by the watchdog when time runs out."""

    def __init__(self, out: Path, result: dict):
        self.out, self.result, self._lock = out, result, threading.Lock()
        self.written = threading.Event()

    def write(self, clock: Clock, cut_short: bool = False) -> bool:
        """Write the files unless they were; whether this call wrote them."""
        with self._lock:
            if self.written.is_set():
                return False
            self.written.set()
            self.result.update(elapsed_s=clock.elapsed(), cut_short=cut_short)
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "gpu.json").write_text(json.dumps(self.result, indent=2))
            try:
                text = markdown(self.result)
            except Exception as e:  # the JSON holds the figures; say why the page has none
                text = f"# GPU\n\nThe report could not be laid out ({type(e).__name__}: {e}).\n"
            (self.out / "gpu.md").write_text(text)
            print(text, flush=True)
            print(f"results: {self.out / 'gpu.json'}, {self.out / 'gpu.md'}", flush=True)
            return True


def watchdog(report: Report, clock: Clock, grace: float) -> None:
    """Write what was measured and end the process if the run overruns its limit by ``grace``
    (a CUDA call cannot be interrupted from Python)."""
    def watch():
        if report.written.wait(max(0.0, clock.left() + grace)):
            return  # the run ended in time
        print("time limit reached: writing the results so far", file=sys.stderr, flush=True)
        if report.write(clock, cut_short=True):
            os._exit(3)

    threading.Thread(target=watch, daemon=True, name="watchdog").start()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--time-limit", type=float, default=540.0,
                        help="seconds for the whole run (default 540)")
    parser.add_argument("--cpu-threads", type=int, default=2,
                        help="torch threads for the CPU figures (default 2)")
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available")
    cfg = QUICK if args.quick else FULL
    shared = args.shared if args.shared.is_dir() else None
    clock = Clock(args.time_limit)
    gpu_name = (torch.cuda.get_device_name(torch.device(args.device))
                if args.device.startswith("cuda") else "none (device cpu)")
    result = {"device": args.device, "gpu": gpu_name, "cpu": describe(),
              "torch": torch.__version__, "cpu_threads": args.cpu_threads, "quick": args.quick,
              "time_limit_s": args.time_limit,
              "command": " ".join(["python -m bench.gpu",
                                   *(sys.argv[1:] if argv is None else argv)]),
              "config": {k: cfg[k] for k in ("batch", "warmup", "steps", "trial")}}
    report = Report(args.out, result)
    watchdog(report, clock, grace=30.0)

    saved = torch.get_num_threads()
    result["spectra"] = spectra(args.device, cfg, cfg["sizes"], cfg["networks"],
                                cfg["call_cap"], clock.section(SHARES["spectra"]), "device")
    result["reflectors"] = reflector_check(args.device, cfg, clock.section(0.03))
    torch.set_num_threads(args.cpu_threads)
    try:
        result["spectra"] += spectra("cpu", cfg, cfg["cpu_sizes"], cfg["cpu_networks"],
                                     cfg["cpu_call_cap"], clock.section(SHARES["cpu_spectra"]),
                                     "cpu")
    finally:
        torch.set_num_threads(saved)
    n, m = (256, 64) if cfg is FULL else (cfg["sizes"][-1], cfg["networks"][-1])
    result["speedup_at"] = [n, m]
    result["speedup"] = speedup(result["spectra"], n, m)
    result["tasks"] = task_sizes(args.device, cfg, shared, clock.section(SHARES["tasks"]))
    result["concurrency"] = concurrency(args.device, cfg, clock.section(SHARES["concurrency"]))
    result["concurrency_summary"] = concurrency_summary(result["concurrency"])
    if clock.left() > (60 if cfg is FULL else 0):
        result["population"] = population(args.device, cfg, clock.section(1.0) - 10)
    report.write(clock)
    return result


if __name__ == "__main__":
    main()
