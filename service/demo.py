"""``aelle demo``: the whole product on one machine, with no configuration.

A coordinator on SQLite in a temporary directory, two worker processes, a small sequential-
digits study over the eight architectures pruned by the service's default pruner (with a trial
budget, the joint model's planned screen: every configuration at epoch 0, then the best
trained, ``docs/pruners.md``); then the ranked trials, what pruning saved,
and plots of the spectra (and of the AeLLE plane, when the study's pruner fitted an AeLLE
model).
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from aelle.cli import table
from service.api import API_PREFIX
from service.config import ServiceSettings
from service.local import local_coordinator, spawn_workers, torch_threads_for_the_coordinator
from service.user_cli import trial_rows

SETTINGS = {"hidden": 32, "spectrum_sequences": 8, "spectrum_steps": 56,
            "spectrum_warmup": 28, "lr": 3e-3}


def study(budget: int, epochs: int, seed: int) -> dict:
    return {"name": "demo-smnist", "task": "smnist", "budget": budget, "epochs": epochs,
            "settings": SETTINGS, "sampler": {"name": "random", "seed": seed}}


def add_demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="run a small study end to end on this machine",
                       description="Start a coordinator (SQLite in a temporary directory) and "
                       "two worker processes, run a small SMNIST study with the default pruner, "
                       "print the ranked trials and what pruning saved, and write plots.")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("demo-output"),
                   help="where the plots go (default ./demo-output)")
    p.set_defaults(func=run_demo)


def run_demo(args) -> int:
    if args.trials < 2 or args.epochs < 1 or args.workers < 1:
        raise ValueError("--trials must be >= 2, --epochs and --workers >= 1")
    user, worker = secrets.token_hex(16), secrets.token_hex(16)
    torch_threads_for_the_coordinator()  # the workers are other processes
    with tempfile.TemporaryDirectory(prefix="aelle-demo-") as tmp:
        settings = ServiceSettings(database_url=f"sqlite:///{tmp}/aelle.db", user_token=user,
                                   worker_token=worker, heartbeat_interval=5, grace_period=30)
        with local_coordinator(settings) as url:
            api = httpx.Client(base_url=url + API_PREFIX, timeout=60,
                               headers={"Authorization": f"Bearer {user}"})
            r = api.post("/studies", json=study(args.trials, args.epochs, args.seed))
            r.raise_for_status()
            finalists = api.get("/studies/demo-smnist/spec").json()["pruner"][
                "settings"].get("finalists")
            plan = (f": each configuration screened at epoch 0, then the best {finalists} "
                    "trained" if finalists else "")
            print(f"coordinator {url} (SQLite in {tmp}); study demo-smnist: {args.trials} "
                  f"trials x {args.epochs} epochs, the default pruner ({r.json()['pruner']}"
                  f"{plan}); {args.workers} workers", flush=True)
            # a throwaway token of a coordinator on 127.0.0.1 that ends with the demo
            print(f"watch it at {url}/ui (user token {user})", flush=True)
            start = time.perf_counter()
            procs = spawn_workers(url, worker, args.workers)
            codes = [p.wait() for p in procs]
            seconds = time.perf_counter() - start
            if any(codes):
                print(f"a worker exited with {codes}", file=sys.stderr)
            trials = api.get("/studies/demo-smnist/trials").json()["data"]
            summary = api.get("/studies/demo-smnist").json()
            model = api.get("/studies/demo-smnist/model").json()
            details = [api.get(f"/studies/demo-smnist/trials/{t['number']}").json()
                       for t in trials]
            blob = api.get("/studies/demo-smnist/model/bytes")
    print()
    print(table(trial_rows(trials)))
    print()
    print(pruning_summary(trials, summary, args.epochs, seconds, model))
    written = plots(details, blob.content if blob.status_code == 200 else None, args.out)
    if written:
        print("plots: " + ", ".join(str(p) for p in written))
    return 0 if not any(codes) else 1


def pruning_summary(trials: list[dict], summary: dict, epochs: int, seconds: float,
                    model: dict) -> str:
    trained = sum(max(t["epochs"] - 1, 0) for t in trials)  # epoch 0 is not training
    again = sum(t.get("retry_of") is not None for t in trials)  # finalists and retries
    full = (len(trials) - again) * epochs  # each configuration once, to the end
    c = summary["counts"]
    ran = f" ({again} of them run a configuration again)" if again else ""
    lines = [f"{len(trials)} trials in {seconds:.0f} s{ran}: {c.get('complete', 0)} complete, "
             f"{c.get('pruned', 0)} pruned, {c.get('diverged', 0)} diverged, "
             f"{c.get('failed', 0)} failed",
             f"epochs trained: {trained} of the {full} a study without pruning would train "
             f"({100 * (1 - trained / max(full, 1)):.0f} % saved)"]
    if summary["best"]:
        b = summary["best"]
        lines.append(f"best: trial {b['number']} loss {b['value']:.4f} {b['params']}")
    latest = model.get("latest")
    if latest:
        lines.append(f"AeLLE model {latest['version']}: trained on {latest['trials']} trials "
                     f"({latest['spectra']} spectra) in {latest['metrics']['fit_seconds']} s")
    return "\n".join(lines)


def plots(details: list[dict], model_bytes: bytes | None, out: Path) -> list[Path]:
    """The spectra of every trial at its last epoch, and the AeLLE plane."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    finals = [d for d in details if d["reports"] and d["reports"][-1]["spectrum"]]
    values = np.array([d["value"] if d["value"] is not None else d["last_value"]
                       for d in finals], dtype=float)
    if finals:
        norm = matplotlib.colors.Normalize(np.nanmin(values), np.nanpercentile(values, 90))
        for d, v in zip(finals, values, strict=True):
            z = np.sort(d["reports"][-1]["spectrum"])[::-1]
            ax.plot(np.arange(1, len(z) + 1), z, color=plt.cm.viridis(norm(v)),
                    ls="-" if d["state"] == "complete" else ":", lw=1)
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax,
                     label="validation loss (dotted: pruned)")
    ax.set_xlabel("exponent index")
    ax.set_ylabel("Lyapunov exponent (per step)")
    ax.set_title("spectrum of every trial at its last epoch")
    fig.tight_layout()
    written.append(out / "spectra.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    if model_bytes is not None and finals:
        from aelle.model import AeLLE

        model = AeLLE.from_bytes(model_bytes)
        e = model.embed([d["reports"][-1]["spectrum"] for d in finals], components=2)
        fig, ax = plt.subplots(figsize=(6.5, 5))
        sc = ax.scatter(e[:, 0], e[:, 1] if e.shape[1] > 1 else np.zeros(len(e)), c=values,
                        cmap="viridis", vmax=np.nanpercentile(values, 90), s=30)
        for d, (x, y) in zip(finals, e[:, :2], strict=False):
            ax.annotate(d["params"].get("arch", ""), (x, y), fontsize=7, alpha=0.7)
        fig.colorbar(sc, ax=ax, label="validation loss")
        ax.set_xlabel("AeLLE PC1")
        ax.set_ylabel("AeLLE PC2")
        ax.set_title(f"AeLLE plane (model {model.version})")
        fig.tight_layout()
        written.append(out / "aelle_plane.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written
