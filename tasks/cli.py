"""``aelle train``: train one network of a task and print its loss and spectrum per epoch.

``assignment`` (NAME=VALUE arguments) is :func:`aelle.cli.assignment`, importable from here as
well."""

from __future__ import annotations

import json

from aelle.cli import assignment
from tasks.base import Task
from tasks.plugins import import_task_module, load_error
from tasks.registry import get, names
from tasks.training import EpochReport, run_trial

__all__ = ["add_train_parser", "assignment", "require_task", "run_train"]


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one network of a task, spectrum after every epoch",
                       description="Train one network of a task of the zoo; print the "
                       "validation loss and the max / mean Lyapunov exponent after each epoch "
                       "(epoch 0: untrained). Parameters not given are drawn at random from "
                       "the task's search space (seeded).")
    p.add_argument("--task", default="smnist",
                   help="a task of the zoo or of an installed plugin (default smnist)")
    p.add_argument("--task-module", action="append", default=[], metavar="PKG.MODULE",
                   help="import this module and register its tasks first (repeatable)")
    p.add_argument("--param", type=assignment, action="append", default=[],
                   metavar="NAME=VALUE", help="a parameter of the search space")
    p.add_argument("--set", type=assignment, action="append", default=[],
                   metavar="NAME=VALUE", help="override a setting (epochs, device, ...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object per epoch, then outcome")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    import optuna

    for module in args.task_module:
        import_task_module(module)
    task = require_task(args.task)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    params = task.suggest(study.ask(), fixed=dict(args.param))
    settings = dict(args.set)

    def show(r: EpochReport) -> None:
        if args.json:
            print(json.dumps({"epoch": r.epoch, "value": r.value, "train_loss": r.train_loss,
                              "max_le": r.max_le, "mean_le": r.mean_le,
                              "train_seconds": r.train_seconds,
                              "spectrum_seconds": r.spectrum_seconds}), flush=True)
            return
        le = "" if r.spectrum is None else f"max LE {r.max_le:+.4f}  mean LE {r.mean_le:+.4f}"
        print(f"epoch {r.epoch:3d}  {task.loss_name} {r.value:.4f}  {le}  "
              f"({r.train_seconds:.2f} s + spectrum {r.spectrum_seconds:.2f} s)", flush=True)

    if not args.json:
        print(f"{task.name}: {json.dumps(params)}, seed {args.seed}")
    out = run_trial(task, params, settings, seed=args.seed, callback=show)
    if args.json:
        print(json.dumps({"state": out.state, "value": out.value, "epochs": out.epochs,
                          "reason": out.reason, "params": params}))
    else:
        print(f"{out.state}: {task.loss_name} {out.value}"
              + (f" ({out.reason})" if out.reason else ""))
    return 0 if out.state == "complete" else 3


def require_task(name: str) -> Task:
    """The registered task ``name``; ValueError listing the known ones (and why an installed
    plugin of that name failed to load)."""
    if name not in names():
        error = load_error(name)
        raise ValueError(f"unknown task {name!r}; known: {', '.join(names())}"
                         + ("" if error is None else f"; the installed plugin {name!r} "
                            f"failed to load: {error}"))
    return get(name)
