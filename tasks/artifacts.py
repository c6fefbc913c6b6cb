"""A trial's trained network as one file: its state dict and what rebuilds it (the task, the
trial's parameters, its resolved settings and seed).

The file is ``torch.save`` of plain data and tensors, read back with ``weights_only=True``
(no pickled code runs on load). Rebuilding goes through the task's own ``build`` and
:meth:`TrialRun.network`, so it works for every registered task, the zoo's and plugins'.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import Tensor, nn

from tasks.base import TrialRun, resolve_device
from tasks.registry import get

FORMAT = "aelle-trial-model"
VERSION = 1


@dataclass(frozen=True)
class TrialModel:
    """What an artifact holds. ``value``: the loss the trial reported for this network;
    ``meta``: where it came from (study, trial number)."""

    task: str
    params: dict[str, Any]
    settings: dict[str, Any]
    seed: int
    state_dict: dict[str, Tensor] = field(repr=False)
    value: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def pack(run: TrialRun, task: str, params: dict[str, Any], settings: dict[str, Any],
         seed: int, value: float | None = None, meta: dict[str, Any] | None = None) -> bytes:
    """The artifact of a trained ``run`` (``settings``: the trial's settings as leased)."""
    resolved = get(task).resolve(params, settings).to_dict()
    state = {k: v.detach().cpu().clone() for k, v in run.network().state_dict().items()}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "task": task, "params": dict(params),
                "settings": resolved, "seed": seed, "value": value, "meta": dict(meta or {}),
                "state_dict": state}, buf)
    return buf.getvalue()


def unpack(source: bytes | str | Path | BinaryIO) -> TrialModel:
    """Read an artifact (its bytes, a path or an open binary file); ValueError saying what is
    wrong with one that is not an AeLLE trial model."""
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    try:
        doc = torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"not a trial model file: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"not a trial model file (no {FORMAT!r} format mark)")
    if doc.get("version") != VERSION:
        raise ValueError(f"trial model file version {doc.get('version')!r}; this aelle reads "
                         f"version {VERSION}")
    for key, kind in (("task", str), ("params", dict), ("settings", dict), ("seed", int),
                      ("state_dict", dict), ("meta", dict)):
        if not isinstance(doc.get(key), kind):
            raise ValueError(f"trial model file: {key} must be {kind.__name__}, got "
                             f"{type(doc.get(key)).__name__}")
    if not all(isinstance(v, Tensor) for v in doc["state_dict"].values()):
        raise ValueError("trial model file: state_dict holds something other than tensors")
    value = doc.get("value")
    if value is not None and not (isinstance(value, float) and math.isfinite(value)):
        raise ValueError(f"trial model file: value must be a finite float, got {value!r}")
    return TrialModel(doc["task"], doc["params"], doc["settings"], doc["seed"],
                      doc["state_dict"], value, doc["meta"])


def load_trial_run(source: bytes | str | Path | BinaryIO | TrialModel,
                   device: str = "cpu") -> TrialRun:
    """The trial's run rebuilt by its task (data, network, optimiser) with the trained
    weights loaded: ``run.validate()`` gives the trial's loss again. ``device``: where to
    build it ("cpu", "cuda[:i]", "auto")."""
    model = source if isinstance(source, TrialModel) else unpack(source)
    task = get(model.task)
    settings = task.resolve(model.params, {**model.settings, "device": device})
    torch_device = resolve_device(settings.device)
    cuda = [torch_device] if torch_device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(model.seed)
        run = task.build(model.params, settings, model.seed, torch_device)
    try:
        run.network().load_state_dict(model.state_dict)
    except RuntimeError as e:
        raise ValueError(f"the stored weights do not fit task {model.task!r} with these "
                         f"parameters: {str(e).splitlines()[0]}") from None
    return run


def load_trial_model(source: bytes | str | Path | BinaryIO | TrialModel,
                     device: str = "cpu") -> nn.Module:
    """The trained network of a trial's artifact, rebuilt by its task (see
    :func:`load_trial_run` for the run around it)."""
    return load_trial_run(source, device).network()
