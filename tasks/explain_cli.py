"""``aelle explain`` without a study: the methods of :mod:`aelle.explain` on one trained network
of the zoo, written as a self-contained HTML report and JSON (the command itself, with its
study mode, is :mod:`service.explain_cli`).

Two ways to get the network: ``--state-dict FILE`` (a ``torch.save``d state dict of the model a
task builds for ``--params``), or ``--train`` (train it here first, ``--set epochs=...``)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from aelle.cli import CommandError, assignment
from aelle.explain import Explanation, Network, explain, network_of, write_report
from tasks.base import TrialRun, resolve_device
from tasks.cli import require_task
from tasks.supervised import SupervisedRun

READOUTS = ("readout", "decoder")


def add_network_options(p) -> None:
    """The options of ``aelle explain`` that give it one network, without a study."""
    p.add_argument("--task", help="the network's task (of the zoo or a plugin)")
    p.add_argument("--params", type=_json_object, metavar="JSON",
                   help='the trial\'s parameters, e.g. \'{"arch": "lstm", "p": 0.3, "lr": 0.01}\'')
    src = p.add_mutually_exclusive_group()
    src.add_argument("--state-dict", type=Path, metavar="FILE",
                     help="weights of the model the task builds for --params (torch.save)")
    src.add_argument("--train", action="store_true", help="train the network here first")
    p.add_argument("--set", type=assignment, action="append", default=[],
                   metavar="NAME=VALUE", help="override a task setting (epochs, hidden, ...)")
    p.add_argument("--save-state-dict", type=Path, metavar="FILE",
                   help="with --train: also save the trained weights here")


def run_network(args) -> int:
    """Explain the network of ``--task`` and ``--params``, trained here or loaded."""
    missing = [flag for flag, given in (("--task", args.task), ("--params", args.params),
                                        ("--state-dict or --train",
                                         args.state_dict or args.train)) if not given]
    if missing:
        raise CommandError(f"give a STUDY, or one network by {', '.join(missing)}")
    task = require_task(args.task)
    settings = task.resolve(args.params, dict(args.set))
    device = resolve_device(settings.device)
    run = task.build(args.params, settings, args.seed, device)
    model = _model(run, args.task)
    if args.train:
        for epoch in range(1, settings.epochs + 1):
            loss = run.train_epoch()
            if not args.quiet:
                print(f"epoch {epoch:3d}  train {task.loss_name} {loss:.4f}", flush=True)
        if args.save_state_dict:
            torch.save(model.state_dict(), args.save_state_dict)
    else:
        load_state_dict(model, args.state_dict)
    value = run.validate()
    exp = explain_run(task.name, args.params, run, value, progress=not args.quiet,
                      seed=args.seed)
    html_path, json_path = write_report(exp, args.out)
    print(f"validation {task.loss_name} {value:.4f}; wrote {html_path} and {json_path}")
    return 0


def explain_run(task_name: str, params: dict, run: TrialRun, value: float | None = None, *,
                title: str | None = None, meta: dict | None = None,
                **kwargs) -> Explanation:
    """Every method on the trained network of ``run``, probed by its spectrum probe; ``meta``
    adds to what the report says of the network, ``kwargs`` go to :func:`explain`."""
    net = network_of_run(run, task_name)
    probe = run.spectrum_probe()
    true_poles = None
    kwargs.setdefault("decision", "sign" if task_name == "flipflop" else "argmax")
    if task_name == "sysid":
        from tasks.sysid import true_poles as sysid_poles
        true_poles = sysid_poles()
    meta = {"task": task_name, "params": json.dumps(params), "hidden": net.hidden_size,
            "cell": type(net.cell).__name__, "validation loss": value, **(meta or {}),
            "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    title = title or f"{task_name} {params.get('arch', '')} network, N = {net.hidden_size}"
    if "loss" not in kwargs:
        task_loss = validation_loss(run, net)
        if task_loss is not None:
            kwargs["loss"], kwargs["loss_name"] = task_loss, "validation loss of the task"
    return explain(net, probe.inputs.cpu(), probe.warmup, title=title, meta=meta,
                   true_poles=true_poles, **kwargs)


def network_of_run(run: TrialRun, task_name: str) -> Network:
    """The Network of the run's trained module and its linear readout; CommandError saying
    why where it has none."""
    model = _model(run, task_name)
    readout = next((getattr(model, n) for n in READOUTS
                    if isinstance(getattr(model, n, None), nn.Linear)), None)
    if readout is None:
        raise CommandError(f"the {task_name} model has no linear readout "
                           f"({' or '.join(READOUTS)}) to explain")
    return network_of(model, readout)


ABLATION_EXAMPLES = 2048
# the intact network's loss through the Network against the module's: float64 against the
# module's float32, so they agree to about 1e-5 relative
AGREE = 1e-3


@torch.no_grad()
def validation_loss(run: TrialRun, network: Network, examples: int = ABLATION_EXAMPLES):
    """The task's own validation loss of ``network`` (an ablated copy of the run's), on the
    first ``examples`` validation examples, for ablation in the units the task is judged by.

    None where the run's validation inputs are not what the network's cell reads (an embedding
    in front of it, as in CharRNN) or its loss is not the model's outputs against targets: the
    intact network must reproduce the module's own loss on those examples."""
    if not isinstance(run, SupervisedRun):
        return None
    xs, ys, n = [], [], 0
    for x, y in run.batches(train=False):
        xs.append(x[: examples - n].cpu())
        ys.append(y[: examples - n].cpu())
        n += len(xs[-1])
        if n >= examples:
            break
    if not xs:
        return None
    x, y = torch.cat(xs), torch.cat(ys)
    if not x.is_floating_point() or x.dim() != 3 or x.shape[-1] != network.input_size:
        return None
    model = run.model
    was_training = model.training
    model.eval()
    try:
        module_out = model(x.to(next(model.parameters()).device)).cpu()
    finally:
        model.train(was_training)
    per_step = module_out.dim() == 3
    x64 = x.to(network.dtype)
    y = y.to(network.dtype) if y.is_floating_point() else y

    def loss(net: Network) -> float:
        out = net.readout(net.run(x64))
        return float(run.loss(out if per_step else out[:, -1], y))

    reference = float(run.loss(module_out.to(network.dtype), y))
    try:
        intact = loss(network)
    except (RuntimeError, ValueError):  # outputs of another shape than the loss takes
        return None
    return loss if abs(intact - reference) <= AGREE * max(abs(reference), 1e-6) else None


def load_state_dict(model: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise CommandError(f"state dict {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: say which
        raise CommandError(f"cannot read the state dict {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise CommandError(f"{path} holds a {type(state).__name__}, not a state dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CommandError(f"{path} does not fit the model of these params: {exc}") from exc


def _model(run: TrialRun, task_name: str) -> nn.Module:
    model = getattr(run, "model", None)
    if not isinstance(model, nn.Module):
        raise CommandError(f"task {task_name} trains no torch module that explain can read")
    return model


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value
