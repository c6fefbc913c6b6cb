"""The replay checked live: budgeted studies through the real coordinator and a real worker,
scored as ``bench.anytime`` scores its replays, beside the replay of the same rule.

For each rule and seed, a coordinator (SQLite in a temporary directory) serves one random-search
study of the task's own search space with the population's settings and epochs; one burst
worker (one torch thread) trains its trials one after another, so trial numbers are the order
of compute. Compute is counted as the replay counts it, from the population's costs: a training
epoch is 1, the untrained network's validation is the population's median epoch-0 cost, and a
spectrum counts only where the rule reads it (``bench.anytime.Rule.spectra``). The study is
stopped once its compute passes the budget; the regret at a budget is that of the best final
value among the trials completed within it, on the replay's scale (best and median final of
the population's report part). The live studies draw new networks from the whole search space,
the replay draws recorded ones from the report part: they agree when the live figures fall
within the spread of the replay's seeds.

Rules: ``bench.anytime`` rule names that the service can run (``SERVICE``), among them the one
the service's default pruner is for a study that gives its trial budget (``default``: the
planned screen, given the replay's plan for the largest budget).

Usage: python -m bench.live smnist [--rules median,joint_q10r30_hp,default] [--seeds 3]
       [--budgets 5,10]
       [--data ../shared/data] [--population PATH] [--out bench/results]
Writes live_<task>.{md,json}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from bench import anytime as at
from service.api import API_PREFIX
from service.config import ServiceSettings
from service.local import local_coordinator, spawn_workers
from service.pruning import DEFAULT_FINALISTS, with_default_plan
from service.specs import StudyCreate

ROOT = Path(__file__).resolve().parents[1]

# replay rule -> the service's pruner spec that is the same rule
SERVICE = {
    "median": {"name": "median"},
    "successive_halving": {"name": "successive_halving", "settings": {"min_resource": 1}},
    # the rolling screen: the default of a study without a trial budget
    "joint_q10r30_hp": {"name": "joint", "settings": {"finalists": None}},
    # the planned screen, the default of a study with one: its trial and epoch budgets are the
    # replay's plan (planned_budgets)
    "screen_top_k_hp": {"name": "joint", "settings": {"finalists": DEFAULT_FINALISTS}},
}


def default_rule() -> str:
    """The replay rule the service's default pruner is for a study that gives its trial
    budget, as these studies do (``service.pruning.with_default_plan``)."""
    spec = with_default_plan(StudyCreate(name="default", task="smnist", budget=1000))
    made = {"name": spec.pruner.name, "settings": spec.pruner.settings}
    for rule, pruner in SERVICE.items():
        if pruner == made:
            return rule
    raise SystemExit(f"the service's default pruner {made} has no replay rule here")


def costs(pop: at.Population) -> dict[str, float]:
    """The population's median costs, in epochs: the untrained validation, and a spectrum at
    epoch 0 and at a later epoch."""
    nets = [n for n in pop.nets if n.values]
    later = [c for n in nets for c in n.spectrum_cost[1:]]
    return {"epoch0": float(np.median([n.cost[0] for n in nets])),
            "spectrum0": float(np.median([n.spectrum_cost[0] for n in nets])),
            "spectrum": float(np.median(later)) if later else 0.0}


def trial_cost(epochs_reported: int, reads: str, c: dict[str, float]) -> float:
    """A trial's compute (epochs) once it reported epochs 0..epochs_reported-1."""
    if epochs_reported <= 0:
        return 0.0
    trained = epochs_reported - 1
    spectra = {"every": c["spectrum0"] + trained * c["spectrum"], "first": c["spectrum0"],
               "none": 0.0}[reads]
    return c["epoch0"] + trained + spectra


def timeline(trials: list[dict], reads: str, c: dict[str, float]) -> tuple[list, float]:
    """(the (compute, final) of each completed trial in compute order, the compute spent)."""
    spent, events = 0.0, []
    for t in sorted(trials, key=lambda t: t["number"]):
        spent += trial_cost(t["epochs"], reads, c)
        if t["state"] == "complete" and t["value"] is not None:
            events.append((spent, float(t["value"])))
    return events, spent


def planned_budgets(rule: str, budget_epochs: float, epochs: int, c: dict[str, float],
                    pool_size: int) -> dict:
    """The budgets of a planned rule's study, as the replay plans it
    (``bench.anytime.screen_top_k_study``): configurations screened while the rest of the
    budget still pays for the K finalists, at most the replay's pool; the epochs left then
    train the finalists, K or as many more as they pay for. An unplanned rule: none."""
    if not at.RULES[rule].planned:
        return {}
    k = SERVICE[rule]["settings"]["finalists"]
    screened = min(pool_size, math.floor((budget_epochs - k * epochs) / c["epoch0"] + 1e-9))
    if screened < 1:
        raise SystemExit(f"{rule}: a budget of {budget_epochs / epochs} FTE does not pay for "
                         f"{k} finalists and a screen")
    return {"budget": screened,
            "budget_epochs": int(budget_epochs - screened * c["epoch0"])}


def run_study(rule: str, seed: int, pop: at.Population, settings: dict, budget_epochs: float,
              c: dict[str, float], plan: dict | None = None) -> dict:
    reads = at.RULES[rule].spectra
    user, worker = secrets.token_hex(16), secrets.token_hex(16)
    name = f"live-{rule}-s{seed}"
    with tempfile.TemporaryDirectory(prefix="aelle-live-") as tmp, contextlib.ExitStack() as ex:
        service = ServiceSettings(database_url=f"sqlite:///{tmp}/live.db", user_token=user,
                                  worker_token=worker, heartbeat_interval=10, grace_period=120)
        url = ex.enter_context(local_coordinator(service))
        api = httpx.Client(base_url=url + API_PREFIX, timeout=120,
                           headers={"Authorization": f"Bearer {user}"})
        spec = {"name": name, "task": pop.task, "budget": 100_000, "epochs": pop.epochs,
                "settings": settings, "sampler": {"name": "random", "seed": 10_000 + seed},
                "pruner": SERVICE[rule], **(plan or {})}
        api.post("/studies", json=spec).raise_for_status()
        log = ex.enter_context(tempfile.TemporaryFile(mode="w+"))
        start = time.perf_counter()
        (proc,) = spawn_workers(url, worker, 1, prefix="live", logs=[log], cwd=ROOT,
                                env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                                stdout=subprocess.DEVNULL, text=True)
        try:
            stopped = False
            while proc.poll() is None:
                time.sleep(2.0)
                trials = api.get(f"/studies/{name}/trials").json()["data"]
                _, spent = timeline(trials, reads, c)
                if not stopped and spent >= budget_epochs:
                    api.post(f"/studies/{name}/stop").raise_for_status()
                    stopped = True
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=120)
        seconds = time.perf_counter() - start
        if proc.returncode:
            log.seek(0)
            raise SystemExit(f"the worker of {name} failed:\n{log.read()[-2000:]}")
        trials = api.get(f"/studies/{name}/trials").json()["data"]
    events, spent = timeline(trials, reads, c)
    return {"rule": rule, "seed": seed, "pruner": SERVICE[rule], "plan": plan or None,
            "seconds": round(seconds, 1),
            "spent_fte": spent / pop.epochs, "events": events,
            "trials": [{k: t[k] for k in ("number", "state", "value", "epochs", "params")}
                       for t in trials]}


def score(run: dict, budgets_fte, epochs: int, scale) -> dict:
    trials = run["trials"]
    return {"regret": at.curve_at(run["events"], [b * epochs for b in budgets_fte], scale),
            "trials": len(trials), "complete": sum(t["state"] == "complete" for t in trials),
            "pruned": sum(t["state"] == "pruned" for t in trials),
            "pruned_at_epoch_0": sum(t["state"] == "pruned" and t["epochs"] == 1
                                     for t in trials)}


def replay(rule: str, pool, ctx, budgets_fte, seeds: int) -> dict:
    """The replay of ``rule`` on the report part, to the largest budget."""
    return at.evaluate(pool, [rule], range(seeds), tuple(budgets_fte), ctx,
                       log=lambda *_: None)["rules"][rule]


def markdown(task, args, pop, scale, c, live: dict, replays: dict, command: str) -> str:
    b = args.budgets
    lines = [f"# The replay checked live: {task}", "", f"Reproduce: `{command}`", "",
             f"Live: {args.seeds} studies per rule through a real coordinator (SQLite) and one "
             f"worker (one torch thread), random search over {task}'s own space with the "
             f"settings of `{pop.path}` ({pop.epochs} epochs), stopped once their compute "
             f"passed {max(b)} FTE. Replay: `bench.anytime` on the population's report part "
             f"({args.replay_seeds} seeds). Compute per trial, in epochs, from the "
             f"population's median costs: untrained validation {c['epoch0']:.3f}, spectrum at "
             f"epoch 0 {c['spectrum0']:.3f}, later {c['spectrum']:.3f}, each counted where the "
             "rule reads it. Regret on the replay's scale (report part: best final "
             f"{scale[0]:.4f}, median {scale[1]:.4f}); the live studies draw from the whole "
             "space, so a live network can beat the report part's best (regret < 0).", "",
             "| rule | pruner spec | " + " | ".join(f"live regret at {x} FTE (per seed)"
                                                  for x in b)
             + " | live mean | replay mean ± SE | replay 10-90 % of seeds | live trials / "
             "pruned (at epoch 0) / complete per FTE | replay trials / pruned / complete "
             "per FTE |", "|---" * (7 + len(b)) + "|"]
    for rule, runs in live.items():
        rp = replays[rule]
        per = [" / ".join(f"{r['score']['regret'][i]:.3f}" for r in runs) for i in range(len(b))]
        mean = np.mean([r["score"]["regret"][-1] for r in runs])
        fine = np.array([r["regret"][-1] for r in rp["per_seed"]])
        lo, hi = np.percentile(fine, [10, 90])
        fte = [max(r["spent_fte"], 1e-9) for r in runs]
        lt = np.mean([r["score"]["trials"] / f for r, f in zip(runs, fte, strict=True)])
        lp = np.mean([r["score"]["pruned"] / f for r, f in zip(runs, fte, strict=True)])
        l0 = np.mean([r["score"]["pruned_at_epoch_0"] / f for r, f in zip(runs, fte,
                                                                          strict=True)])
        lc = np.mean([r["score"]["complete"] / f for r, f in zip(runs, fte, strict=True)])
        sp = max(rp["spent_fte"], 1e-9)
        lines.append(f"| {rule} | `{json.dumps(SERVICE[rule])}` | " + " | ".join(per)
                     + f" | {mean:.3f} | {rp['mean'][-1]:.3f} ± {rp['se'][-1]:.3f} | "
                     f"{lo:.3f}-{hi:.3f} | {lt:.1f} / {lp:.1f} ({l0:.1f}) / {lc:.2f} | "
                     f"{rp['trials'] / sp:.1f} / {rp['pruned'] / sp:.1f} / "
                     f"{rp['completed'] / sp:.2f} |")
    seconds = {rule: [r["seconds"] for r in runs] for rule, runs in live.items()}
    lines += ["", "Wall seconds per live study (training, every epoch's spectrum as the "
              "service takes them, the coordinator's decisions): "
              + "; ".join(f"{k} {', '.join(f'{s:.0f}' for s in v)}" for k, v in seconds.items())
              + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", choices=("smnist",))
    ap.add_argument("--rules", default="median,default")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--replay-seeds", type=int, default=50)
    ap.add_argument("--budgets", type=at.parse_budgets, default=(5, 10))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--population", type=Path)
    ap.add_argument("--jobs", type=int, default=1, help="studies run at once (each with its "
                    "own coordinator and one worker)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    rules = list(dict.fromkeys(default_rule() if r == "default" else r
                               for r in args.rules.split(",")))
    unknown = [r for r in rules if r not in SERVICE]
    if unknown:
        ap.error(f"rules the service cannot run: {unknown}; known: {', '.join(SERVICE)}")
    if not (args.data / "mnist").is_dir():
        ap.error(f"{args.data / 'mnist'} is missing: give --data")
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pop = at.load(args.task, args.population)
    pool, train = pop.part("report"), pop.part("tune")
    scale = at.scale_of(pool)
    c = costs(pop)
    settings = {**pop.settings, "data_dir": str(args.data / "mnist")}
    ctx = at.Context(args.task, pop.epochs, pop.settings, train)
    replays = {rule: replay(rule, pool, ctx, args.budgets, args.replay_seeds) for rule in rules}

    def one(job):
        rule, seed = job
        budget = max(args.budgets) * pop.epochs
        run = run_study(rule, seed, pop, settings, budget, c,
                        planned_budgets(rule, budget, pop.epochs, c, len(pool)))
        run["score"] = score(run, args.budgets, pop.epochs, scale)
        print(f"{rule} seed {seed}: regret {run['score']['regret']}, "
              f"{run['score']['trials']} trials, {run['seconds']:.0f} s", flush=True)
        return run

    jobs = [(rule, seed) for rule in rules for seed in range(args.seeds)]
    # each study has its own coordinator (a thread here) and worker (a process)
    with ThreadPoolExecutor(args.jobs) as pool_of_studies:
        runs = list(pool_of_studies.map(one, jobs))
    live = {rule: [r for r in runs if r["rule"] == rule] for rule in rules}
    command = (f"python -m bench.live {args.task} --rules {args.rules} --seeds {args.seeds} "
               f"--replay-seeds {args.replay_seeds} --budgets "
               f"{','.join(map(str, args.budgets))} --jobs {args.jobs}")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"live_{args.task}"
    stem.with_suffix(".json").write_text(json.dumps(
        {"command": command, "costs": c, "scale": scale, "budgets_fte": list(args.budgets),
         "live": live, "replay": replays}, indent=1, default=float) + "\n")
    stem.with_suffix(".md").write_text(markdown(args.task, args, pop, scale, c, live, replays,
                                                command))
    print(stem.with_suffix(".md").read_text())
    return 0 if all(math.isfinite(r["spent_fte"]) for v in live.values() for r in v) else 1


if __name__ == "__main__":
    sys.exit(main())
