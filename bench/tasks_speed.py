"""Seconds per epoch and per spectrum for each task, at test size and at the dissertation's size.

For every configuration one trial runs ``--epochs`` epochs (no epoch-0 report); an epoch is its
training plus the validation pass, the spectrum is the one taken after it with the task's
default probe (sequences x steps, state convention). Target: the spectrum costs under 10 % of the
epoch at the dissertation's sizes.

Dissertation sizes use the real data when ``--shared`` holds it (MNIST test half, War and Peace);
otherwise the shipped data (digits, CPython's reference manual) at the same network sizes.

The dissertation trained SMNIST on MNIST's 60,000 training images and validated on its 10,000
test images; only the 10,000 test images are at hand (split 8,000 / 2,000). The SMNIST rows on
MNIST therefore also give the share at the dissertation's data: training and validation are
timed apart (the untrained network's epoch 0 is the validation pass alone), and each is scaled
by the number of images (an epoch's cost is linear in them; the spectrum's is not touched).

Usage: python -m bench.tasks_speed [--device cpu|cuda] [--epochs 1] [--shared ../shared/data]
       [--only smnist charrnn signal] [--out bench/results]
Writes tasks_speed.json and tasks_speed.md under --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.machine import describe
from tasks import get, run_trial
from tasks.smnist import ARCHS, load

MNIST_TRAIN, MNIST_TEST = 60_000, 10_000  # the dissertation's SMNIST data

TEST = {
    "smnist": {"hidden": 32, "train_size": 512, "val_size": 256, "spectrum_sequences": 8,
               "spectrum_steps": 40, "spectrum_warmup": 8},
    "charrnn": {"max_chars": 60_000, "seq_len": 50, "spectrum_sequences": 4,
                "spectrum_steps": 50, "spectrum_warmup": 10},
    "signal": {"hidden": 64, "steps": 300, "spectrum_sequences": 4, "spectrum_steps": 50},
}


def configs(shared: Path | None):
    mnist = shared / "mnist" if shared and (shared / "mnist").is_dir() else None
    text = shared / "warpeace_input.txt" if shared and (shared / "warpeace_input.txt").is_file() \
        else None
    for arch in ARCHS:
        params = {"arch": arch, f"p_{arch}": 0.5}
        yield "smnist", f"{arch} N=32, digits 512", "test", params, TEST["smnist"]
        yield ("smnist", f"{arch} N=64, " + ("MNIST 8k" if mnist else "digits 1.4k"),
               "dissertation", params, {"data_dir": str(mnist) if mnist else None})
    for hidden in (64, 128, 256, 512):
        params = {"hidden": hidden, "p": 0.1, "lr": 2e-3, "dropout": 0.1}
        if hidden == 64:
            yield "charrnn", "N=64, manual 60k chars", "test", {**params, "hidden": 16}, \
                TEST["charrnn"]
        yield "charrnn", f"N={hidden}, reference manual", "dissertation", params, {}
        if text:
            yield ("charrnn", f"N={hidden}, War and Peace", "dissertation", params,
                   {"text_path": str(text)})
    params = {"g": 1.4, "connectivity": 0}
    yield "signal", "N=64, 300 steps", "test", params, TEST["signal"]
    yield "signal", "N=512, 1200 steps", "dissertation", params, {}


def measure(task, params, settings, epochs, device) -> dict:
    reports = []
    settings = {**settings, "epochs": epochs, "report_initial": True, "device": device}
    out = run_trial(task, params, settings, seed=0, callback=reports.append)
    first, last = reports[0], reports[-1]  # epoch 0: validation only
    row = {"state": out.state, "epoch_s": last.train_seconds,
           "validation_s": first.train_seconds, "spectrum_s": last.spectrum_seconds,
           "exponents": len(last.spectrum), "share": last.spectrum_seconds / last.train_seconds,
           "value": last.value}
    if task == "smnist" and settings.get("data_dir"):
        train, val = load(get("smnist").settings(settings))
        train_s = max(last.train_seconds - first.train_seconds, 0.0)
        epoch = (train_s * MNIST_TRAIN / len(train.labels)
                 + first.train_seconds * MNIST_TEST / len(val.labels))
        row.update(dissertation_epoch_s=epoch, dissertation_share=last.spectrum_seconds / epoch)
    return row


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    shared = args.shared if args.shared.is_dir() else None

    rows = []
    for task, label, size, params, settings in configs(shared):
        if args.only and task not in args.only:
            continue
        row = {"task": task, "config": label, "size": size,
               **measure(task, params, settings, args.epochs, args.device)}
        rows.append(row)
        print(f"{task:8s} {size:12s} {label:32s} epoch {row['epoch_s']:8.3f} s  spectrum "
              f"{row['spectrum_s']:7.3f} s ({row['exponents']} exps)  share "
              f"{100 * row['share']:6.1f} %", flush=True)

    result = {"machine": f"{describe()}; torch {torch.__version__}, "
                         f"{torch.get_num_threads()} threads, device {args.device}",
              "epochs": args.epochs, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.device == "cpu" else f"_{args.device.split(':')[0]}"
    (args.out / f"tasks_speed{suffix}.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Task speed ({args.device})", "",
             "Command: `python -m bench.tasks_speed`", "", f"Machine: {result['machine']}", "",
             "| task | size | config | epoch (train + validation) | spectrum | exponents | "
             "spectrum / epoch | at 60k + 10k MNIST images (epoch; share) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        scaled = (f"{r['dissertation_epoch_s']:.2f} s; {100 * r['dissertation_share']:.1f} %"
                  if "dissertation_share" in r else "-")
        lines.append(f"| {r['task']} | {r['size']} | {r['config']} | {r['epoch_s']:.3f} s | "
                     f"{r['spectrum_s']:.3f} s | {r['exponents']} | {100 * r['share']:.1f} % | "
                     f"{scaled} |")
    lines += ["", "Target: spectrum under 10 % of the epoch at the dissertation's sizes. The last "
              "column scales the SMNIST epoch measured on the 8,000 / 2,000 images at hand to "
              "the dissertation's 60,000 training and 10,000 validation images (training and "
              "validation timed apart, each linear in its images)."]
    (args.out / f"tasks_speed{suffix}.md").write_text("\n".join(lines) + "\n")
    return result


if __name__ == "__main__":
    main()
