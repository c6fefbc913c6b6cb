"""Fit the joint pruner's shipped models (``aelle/data/joint_v2.pkl``): per zoo task, one
:class:`aelle.pruners.JointModel` on the hyperparameters and the loss curve ("hp": for a study
over the task's own search space) and one on the epoch-0 spectrum and the loss curve
("spectrum": for any other space, where the parameters mean something else), each
cross-fitted on the "tune" part of the task's recorded population only, so that the replay's
report parts stay unseen.

Usage: python -m bench.joint_model [--smnist PATH] [--signal PATH] [--charrnn PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aelle.pruners._joint_shipped import SHIPPED, dumps_table, loads
from bench import joint
from bench.anytime import load

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for task in ("smnist", "signal", "charrnn"):
        ap.add_argument(f"--{task}", type=Path, help=f"the {task} population (default: "
                        "bench.anytime's)")
    ap.add_argument("--out", type=Path, default=ROOT / "aelle" / "data" / SHIPPED)
    args = ap.parse_args(argv)
    models = {}
    for task in ("smnist", "signal", "charrnn"):
        pop = load(task, getattr(args, task))
        tune = pop.part("tune")
        models[task] = {m.inputs: m for m in (
            joint.fit(tune, pop.epochs, use_spectrum=False, use_hp=True),
            joint.fit(tune, pop.epochs, use_spectrum=True, use_hp=False))}
        print(f"{task}: {pop.path}, {len(tune)} tune networks "
              f"({sum(n.complete for n in tune)} complete), {pop.epochs} epochs")
    blob = dumps_table(models)
    loads(blob, "the model just fitted")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(blob)
    print(f"wrote {args.out} ({len(blob) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
