"""How a pruned study is scored against the reference study of its seed, which pruned nothing.

A study record (one JSON line of ``bench/results/pruning_<task>.jsonl``, or a replayed study of
``bench.pruning_replay``) holds its variant, seed, spec, wall seconds, environment and trials.
Trial n of every study of one seed is the same network, so a trial another pruner stopped is
judged by the final value it reached in the reference. Epochs are training epochs: epoch 0, the
untrained network, trains nothing. "Better half": a final value below the median of the
reference's trials, a diverged trial counting as worse. Kept: trained to the end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def read_lines(path: Path) -> list[dict]:
    """The study records of ``path`` (none when it is missing); a line that does not parse
    stops the run."""
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


def trained(t: dict) -> int:
    """Training epochs a trial used (epoch 0, the untrained network, trains nothing)."""
    return max(t["epochs"] - 1, 0)


def final_or_inf(t: dict) -> float:
    """A completed trial's finite final value; infinity for any other trial (worst)."""
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


def summarise(rows: list[dict], order: tuple[str, ...] = ()) -> dict[str, dict]:
    """Per variant, the means over seeds of ``evaluate``'s rows (nan-means for precision and
    recall, which a study that kept nothing or had no better half lacks). Variants come in
    ``order``, then any others in the order they first appear."""
    by: dict[str, list[dict]] = {v: [] for v in order}
    for x in rows:
        by.setdefault(x["variant"], []).append(x)
    table = {}
    for v, xs in by.items():
        if not xs:
            continue
        share = np.array([x["epochs"] / x["reference_epochs"] for x in xs])
        table[v] = {
            "seeds": len(xs),
            "epochs": float(np.mean([x["epochs"] for x in xs])),
            "epoch_share": float(share.mean()),
            "epoch_share_se": float(share.std(ddof=1) / math.sqrt(len(xs))) if len(xs) > 1
            else math.nan,
            "best": float(np.mean([x["best"] for x in xs])),
            "regret": float(np.mean([x["regret"] for x in xs])),
            "worst_regret": float(np.max([x["regret"] for x in xs])),
            "best_kept": float(np.mean([x["regret"] <= 1e-12 for x in xs])),
            "precision": float(np.nanmean([x["precision"] for x in xs])),
            "recall": float(np.nanmean([x["recall"] for x in xs])),
            "pruned": float(np.mean([x["pruned"] for x in xs])),
            "stop_epoch": float(np.mean([e for x in xs for e in x["stop_epochs"]] or [math.nan])),
            "seconds": float(np.mean([x["seconds"] for x in xs])),
        }
    return table


def one_environment(records: list[dict]) -> tuple[list[dict], int]:
    """The records of the newest record's environment, and how many others were left out."""
    if not records:
        return records, 0
    env = records[-1].get("env")
    kept = [r for r in records if r.get("env") == env]
    return kept, len({(r["variant"], r["seed"]) for r in records}
                     - {(r["variant"], r["seed"]) for r in kept})


def latest(records: list[dict]) -> list[dict]:
    """One record per variant and seed: a later line replaces an earlier one (a rerun)."""
    return list({(r["variant"], r["seed"]): r for r in records}.values())


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
    kept = min(len(trials), startup + max(0, need - int(good[:startup].sum())))
    epochs = reference["spec"]["epochs"] * kept
    return epochs / sum(trained(t) for t in reference["trials"])
