"""One vector of hyperparameters for a network of any zoo task, in a space the tasks share, so
that a model fitted on one task's networks reads another's: the architecture one-hot, the log
of the initialisation scale (SMNIST's p of the architecture, CharRNN's p, the signal network's
gain g), log2 of the hidden size, log10 of the learning rate (a parameter, else the task's
setting; 0 where the task has none) and the dropout (0 where none). The study's task settings
fix what the parameters do not."""

from __future__ import annotations

import math

import numpy as np

# every architecture the tasks train (CharRNN is an LSTM, the signal task's network is the
# FORCE rate network)
ARCHITECTURES = ("lstm", "gru", "rnn", "asrnn", "cornn", "lipschitz", "noisy", "lem", "force")
TASK_ARCH = {"charrnn": "lstm", "signal": "force"}
INIT_SCALE = {"charrnn": "p", "signal": "g"}  # smnist: p_<arch>
HP_FEATURES = (*(f"arch={a}" for a in ARCHITECTURES), "log init scale", "log2 hidden",
               "log10 lr", "dropout")
TASKS = ("smnist", *TASK_ARCH)


def hp_features(task: str, params: dict, settings: dict | None = None) -> np.ndarray:
    """The :data:`HP_FEATURES` of a network of ``task`` with ``params`` (a trial's
    parameters) under the task ``settings``; ValueError saying what is missing or out of the
    space (another task, an architecture or an init scale the zoo's space does not have)."""
    from tasks.registry import get

    if task not in TASKS:
        raise ValueError(f"hyperparameter features exist for {', '.join(TASKS)}, not {task!r}")
    resolved = get(task).settings(dict(settings or {})).to_dict()
    arch = params.get("arch") if task == "smnist" else TASK_ARCH[task]
    if arch not in ARCHITECTURES:
        raise ValueError(f"{task}: parameter 'arch' is {arch!r}, not one of "
                         f"{', '.join(ARCHITECTURES)}")
    name = f"p_{arch}" if task == "smnist" else INIT_SCALE[task]
    try:
        scale = float(params[name])
        hidden = params.get("hidden", resolved.get("hidden"))
        lr = params.get("lr", resolved.get("lr"))
        dropout = float(params.get("dropout", 0.0))
        row = [*(float(arch == a) for a in ARCHITECTURES), math.log(scale),
               math.log2(float(hidden)) if hidden else 0.0,
               math.log10(float(lr)) if lr else 0.0, dropout]
    except KeyError:
        raise ValueError(f"{task}: the parameters have no {name!r} (the initialisation scale "
                         f"of {arch})") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"{task}: a hyperparameter is not a positive number: {e}") from None
    return np.array(row)
