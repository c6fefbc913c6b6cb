"""The joint predictor (:mod:`aelle.pruners._joint`) fitted on recorded networks: every recorded
step of every network is a row, labelled with the network's log final (a network that never
finished, or finished above the cap, with the cap: the ``cap_quantile`` of the completed
networks' log finals, so that the trees spend no capacity on how badly a hopeless network ends).

The spectrum column is always the network's epoch-0 spectrum: the rule pays for one probe per
trial, on the untrained network.

``python -m bench.joint smnist [--population PATH]`` measures the model on the report part, for
each feature set (spectrum and hyperparameters, either, the curve alone): Spearman's rank
correlation of the prediction with the final, and the share of report networks whose final is
above the lower bound (the nominal is 1 - alpha), at each epoch; it writes
bench/results/joint_<task>.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from aelle.pruners._joint import JointModel, log_loss
from bench.predictors import hp_features


def hp_of(net) -> np.ndarray:
    return hp_features(net.task, net.params, net.settings)


def rows(model: JointModel, nets, cap: float):
    x, y, g, s = [], [], [], []
    for n in nets:
        if not n.values:
            continue
        target = min(log_loss(n.final), cap) if n.complete else cap
        hp = hp_of(n) if model.use_hp else None
        for e in range(min(len(n.values), model.epochs + 1)):
            x.append(model.features(n.spectra[0], n.values, e, hp))
            y.append(target)
            g.append(f"{n.task}:{n.index}")
            s.append(e)
    return np.stack(x), np.array(y), np.array(g), np.array(s)


def fit(nets, epochs: int, *, use_spectrum: bool = True, use_hp: bool = False,
        alpha: float = 0.1, cap_quantile: float = 0.9, seed: int = 0) -> JointModel:
    """A :class:`JointModel` cross-fitted on ``nets`` (``bench.anytime.Net``)."""
    finals = [log_loss(n.final) for n in nets if n.complete]
    if len(finals) < 10:
        raise ValueError(f"need at least 10 completed networks to fit, got {len(finals)}")
    cap = float(np.quantile(finals, cap_quantile))
    ks = {n.settings.get("spectrum_k") for n in nets}
    model = JointModel(epochs, use_spectrum=use_spectrum, use_hp=use_hp, alpha=alpha,
                       seed=seed, tasks=tuple(sorted({n.task for n in nets})), cap=cap,
                       # a population of leading exponents only: a study's longer spectrum
                       # is read as far as that
                       spectrum_k=ks.pop() if len(ks) == 1 else None)
    return model.fit(*rows(model, nets, cap))


KINDS = {"joint_spec_hp": (True, True), "joint_spec": (True, False), "joint_hp": (False, True),
         "joint_curve": (False, False)}


def measure(task: str, path: Path | None, out: Path) -> dict:
    from scipy.stats import spearmanr

    from bench.anytime import RESULTS, load

    pop = load(task, path)
    tune, report = pop.part("tune"), pop.part("report")
    table = {}
    for kind, (spec, hp) in KINDS.items():
        start = time.perf_counter()
        m = fit(tune, pop.epochs, use_spectrum=spec, use_hp=hp)
        x, y, _, s = rows(m, report, m.cap)
        p = m.predict(x)
        table[kind] = {"fit_seconds": time.perf_counter() - start, "epochs": {}}
        for e in range(pop.epochs):
            k = s == e
            table[kind]["epochs"][e] = {
                "spearman": float(spearmanr(p[k], y[k])[0]),
                "covered": float(np.mean(y[k] >= p[k] + m.margin(e))),
                "margin": m.margin(e)}
    command = f"python -m bench.joint {task} --population {pop.path}"
    lines = [f"# The joint predictor on {task}", "", f"Reproduce: `{command}`", "",
             f"Fitted on the tune part ({len(tune)} networks), measured on the report part "
             f"({len(report)}) of `{pop.path}`. Spearman's rho of the predicted and the real "
             "log final (a network that never finished, or above the cap, at the cap); "
             "covered: the share of report networks whose final is at or above the 10 % "
             "conformal lower bound (nominal 0.90).", "",
             "| features | " + " | ".join(f"epoch {e}" for e in range(pop.epochs)) + " |",
             "|---|" + "---|" * pop.epochs]
    for kind, t in table.items():
        lines.append(f"| {kind} | " + " | ".join(
            f"{v['spearman']:.3f} / {v['covered']:.2f}" for v in t["epochs"].values()) + " |")
    lines += ["", "Cells: rho / covered."]
    out = out or RESULTS
    (out / f"joint_{task}.md").write_text("\n".join(lines) + "\n")
    (out / f"joint_{task}.json").write_text(json.dumps(
        {"command": command, "tune": len(tune), "report": len(report), "table": table},
        indent=1) + "\n")
    print("\n".join(lines))
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="the joint predictor's rank correlation and "
                                 "coverage on a population's report part")
    ap.add_argument("task", choices=("smnist", "charrnn", "signal"))
    ap.add_argument("--population", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    measure(args.task, args.population, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
