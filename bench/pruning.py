"""Compute saved at equal quality: AeLLE against the pruners people use, run through the service.

For one task, every pruner variant runs the same study (random sampler with the same seed, so
trial n has the same parameters and, trained with seed n, the same curve in every study; the
same trial budget and epochs per trial) on a real coordinator (SQLite) with real worker
processes. The reference study of each seed prunes nothing and records what AeLLE would have
decided (shadow mode): it is the "none" row and tells, for every trial another pruner stopped,
the final value the trial would have reached. Per variant and seed this records the epochs
trained, the wall time, the best final value and its regret against the reference, and the
precision and recall of "this trial is in the better half" in the pruner's decisions (kept =
trained to the end).

Variants: none (the reference), median, successive_halving, hyperband, max_le (the LE
threshold), aelle (fitted in the study), aelle_pre (AeLLE pre-trained on the reference study of
the next seed: a previous study of the same task, not this one's trials), aelle_completed
(the cut from the completed trials only, the rule before pruned trials' predictions counted),
and aelle_curve / aelle_pre_curve: the spectrum decides at epoch 0 only, the median rule from
epoch 1 (pruner.settings.curve = "median"); aelle_curve_study / aelle_pre_curve_study: the same
with the study's median after epoch 0, the trials stopped so far counted as worse
(curve = "study_median", aelle.curves.StudyMedianPruner).

Resumable: each finished study is one JSON line in ``bench/results/pruning_<task>.jsonl``;
rerunning skips them (the studies live in ``bench/results/.pruning/<task>.db``, which the
pre-trained variant needs). ``--report`` only rewrites the report and plots from the lines.

Trial n is the same network in every study only where the floating-point results are the same:
another CPU (MKL and torch pick kernels by the instruction set) or other library versions train
the same trial to another curve (seen here: final losses 15 % apart after 8 epochs). So every
line records the environment it ran in; a run resumes only the lines of its own environment,
and the report uses the environment of the newest line alone. Each scored study also counts the
trials that it and its reference both completed with different final values ("unreproduced"),
which must be 0.

Usage: python bench/pruning.py smnist [--seeds 3] [--trials N] [--epochs E] [--workers 2]
       [--variants none,aelle,...] [--full] [--data ../shared/data] [--report]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VARIANTS = ("none", "median", "successive_halving", "hyperband", "max_le", "aelle", "aelle_pre",
            "aelle_completed", "aelle_curve", "aelle_pre_curve", "aelle_curve_study",
            "aelle_pre_curve_study")
AELLE = {"n_startup_trials": 8, "explore": 0.1, "retrain_every": 2}
# the variants where the spectrum decides at epoch 0 and a learning-curve rule after it
CURVE_VARIANTS = {
    "aelle_curve": "Optuna's median rule (`curve: median`)",
    "aelle_pre_curve": "Optuna's median rule (`curve: median`)",
    "aelle_curve_study": "the study's median, stopped trials counted (`curve: study_median`)",
    "aelle_pre_curve_study": "the study's median, stopped trials counted "
                             "(`curve: study_median`)",
}


def presets(data: Path) -> dict:
    """Per task: CPU sizes (about an hour for the whole grid on 2 cores) and --full sizes (the
    dissertation's networks, for a GPU)."""
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


def pruner(variant: str, epochs: int) -> dict:
    if variant == "none":
        return {"name": "aelle", "settings": AELLE, "shadow": True}
    if variant == "median":  # epoch 0 is the untrained network: decide from the first epoch on
        return {"name": "median", "settings": {"n_warmup_steps": 1}}
    if variant == "successive_halving":
        return {"name": "successive_halving", "settings": {"min_resource": 1}}
    if variant == "hyperband":
        return {"name": "hyperband", "settings": {"min_resource": 1, "max_resource": epochs}}
    if variant == "max_le":
        return {"name": "max_le", "settings": AELLE}
    if variant == "aelle_completed":  # the cut from the survivors only (before the stand-ins)
        return {"name": "aelle", "settings": {**AELLE, "cut_from": "completed"}}
    if variant.endswith("_curve"):  # the spectrum at epoch 0, the median rule from epoch 1
        return {"name": "aelle", "settings": {**AELLE, "curve": "median"}}
    if variant.endswith("_curve_study"):  # ... the median of all trials, stopped ones counted
        return {"name": "aelle", "settings": {**AELLE, "curve": "study_median"}}
    # aelle, and aelle_pre: Bench.study names the study its model comes from
    return {"name": "aelle", "settings": dict(AELLE)}


def environment() -> dict:
    """What decides a trial's floating-point results: the CPU and the numerical libraries."""
    import platform

    import sklearn
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "numpy": np.__version__, "sklearn": sklearn.__version__,
            "python": platform.python_version()}


def study_name(task: str, variant: str, seed: int) -> str:
    return f"{task}-{variant}-s{seed}"


# ---- running
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
        from service.config import ServiceSettings
        from service.local import local_coordinator

        work = RESULTS / ".pruning"
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
            api = httpx.Client(base_url=url + "/api/v1", timeout=120,
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
                "pruner": pruner(variant, p["epochs"])}
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
        env = {**os.environ, "AELLE_WORKER_TOKEN": worker, "AELLE_URL": url,
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        start = time.perf_counter()
        with contextlib.ExitStack() as files:
            # their logs go to files: a pipe read only at the end could fill up and block them
            logs = [files.enter_context(tempfile.TemporaryFile(mode="w+"))
                    for _ in range(args.workers)]
            procs = [subprocess.Popen([sys.executable, "-m", "aelle.cli", "worker", "--burst",
                                       "--name", f"bench-{i}"], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=log, text=True)
                     for i, log in enumerate(logs)]
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
        row["shadow_first_prune"] = attrs.get("aelle:shadow_first_prune_step")
        row["shadow_max_le"] = {str(r["epoch"]): float(np.max(r["spectrum"]))
                                for r in detail["reports"] if r["spectrum"]}
    return row


def read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{i}: not a JSON line ({e}); remove it to rerun "
                                 "that study") from None
    return out


# ---- analysis
def trained(t: dict) -> int:
    """Training epochs a trial used (epoch 0, the untrained network, trains nothing)."""
    return max(t["epochs"] - 1, 0)


def final_or_inf(t: dict) -> float:
    v = t["value"] if t["state"] == "complete" else None
    return v if v is not None and math.isfinite(v) else math.inf


def evaluate(run: dict, reference: dict) -> dict:
    """One study against the reference study of its seed."""
    ref = {t["number"]: t for t in reference["trials"] if t["retry_of"] is None}
    ref_finals = np.array([final_or_inf(t) for t in ref.values()])
    cut = float(np.median(ref_finals))
    best_ref = float(np.min(ref_finals))
    trials = [t for t in run["trials"] if t["retry_of"] is None]
    matched = [t for t in trials
               if t["number"] in ref and t["params"] == ref[t["number"]]["params"]]
    if run is reference:  # AeLLE's shadow decisions: kept = never would have pruned (a
        # decision at the last epoch stops nothing: the coordinator never prunes there)
        last = run["spec"]["epochs"]
        stop = {t["number"]: t.get("shadow_first_prune") for t in matched
                if t.get("shadow_first_prune") is not None and t["shadow_first_prune"] < last}
        kept = {t["number"]: t["number"] not in stop for t in matched}
    else:
        kept = {t["number"]: t["state"] == "complete" for t in matched}
        stop = {t["number"]: t["epochs"] - 1 for t in matched if t["state"] == "pruned"}
    # the same network must end where it ended in the reference when both trained it through
    unreproduced = sum(1 for t in matched if t["state"] == "complete"
                       and ref[t["number"]]["state"] == "complete"
                       and t["value"] != ref[t["number"]]["value"])
    good = {n: final_or_inf(ref[n]) < cut for n in kept}
    tp = sum(kept[n] and good[n] for n in kept)
    n_kept, n_good = sum(kept.values()), sum(good.values())
    finals = [final_or_inf(t) for t in trials]
    best = float(min(finals)) if finals else math.inf
    wrong = [{"number": n, "params": ref[n]["params"], "stopped_at": stop.get(n),
              "final_would_be": ref[n]["value"],
              "rank": int(np.sum(ref_finals < final_or_inf(ref[n]))) + 1,
              "max_le": ref[n].get("shadow_max_le", {}).get(str(stop.get(n)))}
             for n in kept if good[n] and not kept[n]]
    # the max LE of the worse-half trials stopped (rightly), at the epoch they were stopped
    right = [ref[n].get("shadow_max_le", {}).get(str(stop.get(n)))
             for n in kept if not good[n] and not kept[n]]
    by_epoch: dict[int, list[int]] = {}  # stop epoch -> [better-half trials, all trials]
    for n in kept:
        if not kept[n] and stop.get(n) is not None:
            counts = by_epoch.setdefault(stop[n], [0, 0])
            counts[0] += good[n]
            counts[1] += 1
    return {"variant": run["variant"], "seed": run["seed"], "seconds": run["seconds"],
            "epochs": sum(trained(t) for t in run["trials"]),
            "reference_epochs": sum(trained(t) for t in reference["trials"]),
            "best": best, "regret": (best - best_ref) / abs(best_ref) if best_ref else math.nan,
            "precision": tp / n_kept if n_kept else math.nan,
            "recall": tp / n_good if n_good else math.nan,
            "pruned": sum(not k for k in kept.values()),
            "stop_epochs": sorted(s for s in stop.values() if s is not None),
            "unmatched": len(trials) - len(matched), "unreproduced": unreproduced,
            "n_good": n_good, "wrongly_pruned": wrong,
            "rightly_pruned_max_le": [v for v in right if v is not None],
            "stops_by_epoch": {e: by_epoch[e] for e in sorted(by_epoch)},
            "curve": curve(run)}


def curve(run: dict) -> list[tuple[int, float]]:
    """Best final value so far against training epochs consumed, trials in finishing order."""
    done = sorted((t for t in run["trials"] if t["finished_at"]), key=lambda t: t["finished_at"])
    spent, best, out = 0, math.inf, []
    for t in done:
        spent += trained(t)
        best = min(best, final_or_inf(t))
        out.append((spent, best))
    return out


def one_environment(records: list[dict]) -> tuple[list[dict], int]:
    """The records of the newest record's environment, and how many others were left out."""
    if not records:
        return records, 0
    env = records[-1].get("env")
    kept = [r for r in records if r.get("env") == env]
    return kept, len({(r["variant"], r["seed"]) for r in records}
                     - {(r["variant"], r["seed"]) for r in kept})


def report(task: str, records: list[dict], path_md: Path, path_png: Path) -> dict:
    records, foreign = one_environment(records)
    records = list({(r["variant"], r["seed"]): r for r in records}.values())  # the last run
    refs = {r["seed"]: r for r in records if r["variant"] == "none"}
    rows = [evaluate(r, refs[r["seed"]]) for r in records if r["seed"] in refs]
    by = {v: [x for x in rows if x["variant"] == v] for v in VARIANTS}
    by = {v: xs for v, xs in by.items() if xs}
    table = {}
    for v, xs in by.items():
        table[v] = {
            "seeds": len(xs),
            "epochs": float(np.mean([x["epochs"] for x in xs])),
            "epoch_share": float(np.mean([x["epochs"] / x["reference_epochs"] for x in xs])),
            "best": float(np.mean([x["best"] for x in xs])),
            "regret": float(np.mean([x["regret"] for x in xs])),
            "worst_regret": float(np.max([x["regret"] for x in xs])),
            "precision": float(np.nanmean([x["precision"] for x in xs])),
            "recall": float(np.nanmean([x["recall"] for x in xs])),
            "pruned": float(np.mean([x["pruned"] for x in xs])),
            "stop_epoch": float(np.mean([e for x in xs for e in x["stop_epochs"]] or [math.nan])),
            "seconds": float(np.mean([x["seconds"] for x in xs])),
        }
    spec = records[0]["spec"]
    lines = [f"# Pruning benchmark: {task}", "",
             f"Reproduce: `python bench/pruning.py {task}` (resumes from "
             f"`bench/results/pruning_{task}.jsonl`; `--report` redraws this from it).", "",
             f"{spec['budget']} trials x {spec['epochs']} epochs per study, random sampler "
             f"seeded per study seed, settings `{json.dumps(spec['settings'])}`"
             + (f", search space `{json.dumps(spec['search_space'])}`"
                if spec.get("search_space") else "") + ".",
             "Epochs are training epochs (epoch 0, the untrained network, trains nothing). "
             "Regret: (best final - best final of the reference) / |best final of the "
             "reference|. Precision and recall of \"in the better half\" (final value below the "
             "median of the reference study's trials, diverged counting as worse) in what the "
             "pruner kept; the none row gives AeLLE's shadow decisions on the reference study."]
    env = records[0].get("env")
    if env:
        lines.append(f"Environment: {env['cpu']} ({env['capability']}), torch {env['torch']}, "
                     f"numpy {env['numpy']}, scikit-learn {env['sklearn']}"
                     + (f"; {foreign} studies recorded elsewhere are left out" if foreign
                        else "") + ".")
    unreproduced = sum(x["unreproduced"] for x in rows)
    lines.append(f"Unreproduced trials (completed here and in the reference with different "
                 f"final values): {unreproduced}"
                 + ("" if not unreproduced else " -- the comparison is not exact") + ".")
    lines += ["", "| pruner | seeds | epochs | % of none | best final | regret (mean / worst) "
              "| precision | recall | pruned | mean stop epoch | wall s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for v, t in table.items():
        lines.append(f"| {v} | {t['seeds']} | {t['epochs']:.0f} | {100 * t['epoch_share']:.0f} %"
                     f" | {t['best']:.4f} | {100 * t['regret']:.2f} % / "
                     f"{100 * t['worst_regret']:.2f} % | {t['precision']:.2f} | "
                     f"{t['recall']:.2f} | {t['pruned']:.1f} | {t['stop_epoch']:.1f} | "
                     f"{t['seconds']:.0f} |")
    lines += ["", "## Targets (AeLLE in-study, mean over seeds)", ""]
    lines += targets(table)
    lines += ["", "## Per seed", "", "| pruner | seed | epochs | best final | regret | "
              "precision | recall | stopped at (epoch: trials) |",
              "|---|---|---|---|---|---|---|---|"]
    for x in rows:
        stops = dict(sorted({e: x["stop_epochs"].count(e) for e in x["stop_epochs"]}.items()))
        lines.append(f"| {x['variant']} | {x['seed']} | {x['epochs']} | {x['best']:.4f} | "
                     f"{100 * x['regret']:.2f} % | {x['precision']:.2f} | {x['recall']:.2f} | "
                     f"{stops or '-'} |")
    lines += ["", "## Decisions by the epoch they were taken", "",
              "Trials stopped at each epoch over all seeds, as `better-half / all`: a stop of a "
              "better-half trial is a wrong decision, so 1 - better/all is the precision of "
              "that epoch's stops.", "", "| pruner | " + " | ".join(
                  f"epoch {e}" for e in range(spec["epochs"])) + " |",
              "|---|" + "---|" * spec["epochs"]]
    for v in by:
        total: dict[int, list[int]] = {}
        for x in by[v]:
            for e, (g, n) in x["stops_by_epoch"].items():
                t = total.setdefault(int(e), [0, 0])
                t[0] += g
                t[1] += n
        lines.append(f"| {v} | " + " | ".join(
            f"{total[e][0]} / {total[e][1]}" if e in total else "-"
            for e in range(spec["epochs"])) + " |")
    lines += ["", "## Why targets are missed, and the change tried", ""]
    lines += analysis(task, table, rows, spec, refs)
    lines += ["", "## Better-half trials that AeLLE stopped", ""]
    for x in rows:
        if x["variant"].startswith("aelle") and x["wrongly_pruned"]:
            for w in x["wrongly_pruned"]:
                lines.append(f"- {x['variant']} seed {x['seed']}: trial {w['number']} "
                             f"{w['params']} stopped at epoch {w['stopped_at']}; it would end "
                             f"at {w['final_would_be']:.4f} (rank {w['rank']} of the "
                             f"reference), max LE then {w['max_le']}")
    path_md.write_text("\n".join(lines) + "\n")
    plot(task, rows, path_png)
    summary = {"task": task, "table": table, "rows": [{k: v for k, v in x.items() if k != "curve"}
                                                     for x in rows]}
    path_md.with_suffix(".json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    return summary


def oracle_share(reference: dict, startup: int, recall: float = 0.85) -> float:
    """The smallest share of the reference's epochs a pruner can spend and keep ``recall`` of
    the better half: it knows every final value, trains the first ``startup`` trials through
    (an in-study model's start-up), then keeps just enough better-half trials to the end and
    stops every other trial at epoch 0."""
    trials = sorted((t for t in reference["trials"] if t["retry_of"] is None),
                    key=lambda t: t["number"])
    finals = np.array([final_or_inf(t) for t in trials])
    good = finals < np.median(finals)
    need = math.ceil(recall * good.sum())
    kept = startup + max(0, need - int(good[:startup].sum()))
    epochs = reference["spec"]["epochs"] * kept
    return epochs / sum(trained(t) for t in reference["trials"])


def analysis(task: str, table: dict, rows: list[dict], spec: dict,
             refs: dict | None = None) -> list[str]:
    """Figures behind the misses: the bound recall puts on epochs, the cost of the start-up,
    how the spectra of wrongly stopped trials compare with those rightly stopped."""
    out = []
    median, a = table.get("median"), table.get("aelle")
    if refs:
        startup = AELLE["n_startup_trials"]
        free = np.mean([oracle_share(r, 0) for r in refs.values()])
        after = np.mean([oracle_share(r, startup) for r in refs.values()])
        out.append(f"- An oracle that knows every final value and keeps 85 % of the better half "
                   f"to the end, stopping every other trial at epoch 0, spends "
                   f"{100 * free:.0f} % of the reference's epochs with no start-up, "
                   f"{100 * after:.0f} % when it must first train {startup} trials through as "
                   "the in-study model does: 'at most 50 %' with 'recall >= 85 %' leaves "
                   "almost no room for a trial kept wrongly.")
    if median is not None:
        out.append(f"- A bound: keeping a share r of the better half to the end trains at least "
                   f"r/2 of the reference's epochs, so recall >= 85 % costs >= 42.5 %; the "
                   f"median pruner spends {100 * median['epoch_share']:.0f} % here (recall "
                   f"{100 * median['recall']:.0f} %). Where that is below 42.5 %, 'recall >= 85 "
                   "%' and 'fewer epochs than median' cannot both hold.")
    startup = AELLE["n_startup_trials"]
    out.append(f"- Start-up: in-study AeLLE decides once {startup} trials completed; they train "
               f"all {spec['epochs']} epochs: {100 * startup / spec['budget']:.0f} % of the "
               "reference's epochs before the model prunes anything. The pre-trained model has "
               "no start-up.")
    for v in ("aelle", "aelle_pre"):
        xs = [x for x in rows if x["variant"] == v]
        wrong = [w["max_le"] for x in xs for w in x["wrongly_pruned"] if w["max_le"] is not None]
        right = [m for x in xs for m in x.get("rightly_pruned_max_le", [])]
        if v in table and wrong and right:
            out.append(
                f"- {v}: precision {table[v]['precision']:.2f}, recall {table[v]['recall']:.2f}; "
                f"{len(wrong)} better-half trials stopped over {len(xs)} seeds (listed below), "
                f"max LE then {np.mean(wrong):.3f} ± {np.std(wrong):.3f}, against "
                f"{np.mean(right):.3f} ± {np.std(right):.3f} for the {len(right)} worse-half "
                "trials it stopped: the groups differ on average but overlap within their "
                "spread, where a model fitted on "
                + ("the few trials completed so far" if v == "aelle" else "a previous study")
                + " misplaces some.")
    for v, rule in CURVE_VARIANTS.items():
        c = table.get(v)
        if c is not None and median is not None:
            out.append(f"- Tried: {v}, the spectrum at epoch 0 only and {rule} from epoch 1: "
                       f"{100 * c['epoch_share']:.0f} % of the epochs against "
                       f"{100 * median['epoch_share']:.0f} % for median, mean regret "
                       f"{100 * c['regret']:.2f} % (median {100 * median['regret']:.2f} %), "
                       f"recall {100 * c['recall']:.0f} % (median "
                       f"{100 * median['recall']:.0f} %).")
    replays = [f"`bench/results/{f.name}`" for f in
               (RESULTS / f"pruning_replay_{task}.md", RESULTS / f"pruning_replay_{task}_curves.md")
               if f.exists()]
    out.append("- The same rules replayed on the recorded population (more studies, no training): "
               + (", ".join(replays) if replays else f"not run yet for {task} "
                  f"(`python bench/pruning_replay.py {task}`)") + ".")
    if a is not None:
        out.append("- Proposed next: ship a model pre-trained per task on a recorded "
                   "population (in-study fits on a few survivors are the weak point), decide at "
                   "epoch 0 only when the prediction is confident (an ensemble's spread), and "
                   "train the in-study model on curve-stopped trials too, labelled by their "
                   "curves' extrapolated finals, so that it is not fitted on the survivors alone.")
    return out


def targets(table: dict) -> list[str]:
    a, none, median = table.get("aelle"), table.get("none"), table.get("median")
    if a is None or none is None:
        return ["- the aelle and none rows are needed"]
    out = [f"- epochs at most 50 % of none: {100 * a['epoch_share']:.0f} % "
           f"({'met' if a['epoch_share'] <= 0.5 else 'missed'})",
           f"- best final within 1 % of none: mean regret {100 * a['regret']:.2f} % "
           f"({'met' if a['regret'] <= 0.01 else 'missed'})",
           f"- recall of better-half trials >= 85 %: {100 * a['recall']:.0f} % "
           f"({'met' if a['recall'] >= 0.85 else 'missed'})"]
    if median is not None:
        fewer = a["epochs"] < median["epochs"] and a["best"] <= median["best"]
        out.append(f"- fewer epochs than median ({a['epochs']:.0f} vs {median['epochs']:.0f}) "
                   f"at an equal or better best ({a['best']:.4f} vs {median['best']:.4f}): "
                   f"{'met' if fewer else 'missed'}")
    for v, rule in CURVE_VARIANTS.items():
        c = table.get(v)
        if c is not None and median is not None:
            fewer = c["epochs"] < median["epochs"] and c["best"] <= median["best"]
            out.append(f"- {v} (spectrum at epoch 0, {rule} after): fewer epochs than "
                       f"median ({c['epochs']:.0f} vs {median['epochs']:.0f}) at an equal or "
                       f"better best ({c['best']:.4f} vs {median['best']:.4f}): "
                       f"{'met' if fewer else 'missed'}; recall {100 * c['recall']:.0f} %")
    pre = table.get("aelle_pre")
    if pre is not None:
        less = pre["epochs"] < a["epochs"]
        out.append(f"- pre-trained spends less than in-study: {pre['epochs']:.0f} vs "
                   f"{a['epochs']:.0f} epochs ({'met' if less else 'missed'}), regret "
                   f"{100 * pre['regret']:.2f} %")
    return out


def plot(task: str, rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted({x["seed"] for x in rows})
    fig, axes = plt.subplots(1, len(seeds), figsize=(5 * len(seeds), 4.2), squeeze=False)
    colors = dict(zip(VARIANTS, plt.cm.tab10.colors, strict=False))
    for ax, seed in zip(axes[0], seeds, strict=True):
        for x in rows:
            if x["seed"] != seed or not x["curve"]:
                continue
            e, b = zip(*x["curve"], strict=True)
            b = np.array(b, dtype=float)
            ok = np.isfinite(b)
            ax.step(np.array(e)[ok], b[ok], where="post", color=colors[x["variant"]],
                    label=x["variant"], lw=2 if x["variant"].startswith("aelle") else 1.2)
        ax.set_title(f"{task}, seed {seed}")
        ax.set_xlabel("training epochs consumed")
        ax.set_ylabel("best final validation loss so far")
        finite = [b for x in rows if x["seed"] == seed for _, b in x["curve"] if math.isfinite(b)]
        if finite:
            lo, hi = min(finite), np.percentile(finite, 60)
            ax.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
