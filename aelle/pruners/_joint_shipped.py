"""The joint pruner's shipped models: the task -> inputs -> :class:`JointModel` table in
``aelle/data`` (written by ``python -m bench.joint_model``), how a study's pruner is chosen from
it (:func:`joint_pruner`, ``make("joint", ...)``), and the learning-curve pruners ``then``
names."""

from __future__ import annotations

import functools
import io
import lzma
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
from optuna.pruners import BasePruner

from aelle.pruners._joint import JointModel, JointPruner
from aelle.pruners._store import SpectrumStore
from aelle.validate import check_choice

FORMAT = 2  # 2: JointModel.first and spectrum_k; a table of task -> inputs -> model


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def loads(blob: bytes, source: str = "the joint model") -> dict[str, dict[str, JointModel]]:
    """The task -> inputs -> :class:`JointModel` table a shipped file holds (inputs:
    :attr:`JointModel.inputs`); ValueError naming ``source`` when it is not one (truncated,
    another format, another scikit-learn)."""
    try:
        data = pickle.load(io.BytesIO(lzma.decompress(blob)))
    except Exception as e:
        raise ValueError(f"{source} is corrupt or not a joint model: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{source}: expected a joint model of format {FORMAT}, got "
                         f"{data.get('format') if isinstance(data, dict) else type(data)}: "
                         "refit it (python -m bench.joint_model)")
    if data.get("sklearn") != _sklearn_version():
        raise ValueError(f"{source} was saved with scikit-learn {data.get('sklearn')}, this is "
                         f"{_sklearn_version()}: refit it (python -m bench.joint_model)")
    models = data.get("models")
    if not isinstance(models, dict) or not all(
            isinstance(v, dict) and v and all(isinstance(m, JointModel) and m.inputs == k
                                              for k, m in v.items())
            for v in models.values()):
        raise ValueError(f"{source} holds no table of joint models")
    return models


def dumps_table(models: dict[str, dict[str, JointModel] | JointModel]) -> bytes:
    """A table of task -> inputs -> model (a task given one model: that model under its
    inputs), as :func:`loads` reads it."""
    table = {t: m if isinstance(m, dict) else {m.inputs: m} for t, m in models.items()}
    return lzma.compress(pickle.dumps({"format": FORMAT, "sklearn": _sklearn_version(),
                                       "models": table}, protocol=4))


SHIPPED = "joint_v2.pkl"  # in aelle/data: bench.joint_model writes it


def shipped(path=None) -> dict[str, dict[str, JointModel]]:
    """The pre-trained task -> inputs -> :class:`JointModel` table shipped in the wheel (or at
    ``path``); FileNotFoundError or ValueError saying what is wrong."""
    return _wheel_table() if path is None else _read_table(Path(path))


@functools.cache
def _wheel_table() -> dict[str, dict[str, JointModel]]:
    from importlib import resources

    return _read_table(resources.files("aelle") / "data" / SHIPPED)


def _read_table(source) -> dict[str, dict[str, JointModel]]:
    try:
        blob = source.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"the joint pruner's model {source} is missing: reinstall "
                                "aelle, or refit it with python -m bench.joint_model") from None
    return loads(blob, str(source))


def choose(models: dict[str, JointModel], inputs: str, can_read_hp: bool, task: str
           ) -> JointModel | None:
    """The model of one task's table that ``inputs`` names; "auto": the model of the
    hyperparameters where the study's can be read, else None (no shipped model beat the
    learning-curve pruner there: bench/results/anytime_*_select.md)."""
    check_choice("inputs", inputs, ("auto", "hp", "spectrum+hp", "spectrum", "curve"))
    if inputs == "auto":
        return models.get("hp") if can_read_hp else None
    if inputs not in models:
        raise ValueError(f"inputs: no shipped joint model of {task} reads {inputs!r}; there "
                         f"are {', '.join(models)}")
    if models[inputs].use_hp and not can_read_hp:
        raise ValueError(f"inputs: {inputs!r} reads the hyperparameters, and this study's "
                         "cannot be read (a search space other than the task's own): use "
                         "inputs='spectrum'")
    return models[inputs]


def joint_pruner(task: str | None = None, *, inputs: str = "auto", k: int = 1,
                 alpha: float | None = None, screen: bool = True, screen_top: float = 1.0,
                 screen_quantile: float | None = 0.1, screen_warmup: int = 30,
                 screen_records: bool = True, screen_adapt: int = 0, learn: str = "none",
                 stack_from: int = 8, finalists: int | None = None, then: str | None = "none",
                 model_path: str | None = None,
                 store: SpectrumStore | None = None,
                 hp_of: Callable[[dict], np.ndarray] | None = None) -> BasePruner:
    """``make("joint", task=...)``: the :class:`JointPruner` over the shipped model of ``task``
    (a zoo task: smnist, signal, charrnn) that reads ``inputs`` beside the loss curve, the
    epoch-0 spectrum from ``store`` (default: the trial's user attributes, where
    :func:`aelle.pruners.report_spectrum` puts it).

    The defaults are the rule that won the equal-compute replays (``joint_q10r30_hp``,
    bench/results/anytime_*.md): the model of the hyperparameters and the untrained network's
    validation loss ("auto", where ``hp_of`` maps a trial's parameters into the space the
    model was fitted on) screens at epoch 0; a configuration passes when its prediction is in
    the best 10 % of the model's out-of-fold predictions on its training networks, or, from the
    30th configuration on, beats every earlier one of the study; a trial that passes trains to
    the end (``then`` "none"; "median", "successive_halving": that pruner decides from epoch 1
    on; None: the joint model's conformal rule does).

    ``finalists``: K makes it a planned screen instead (the replays' ``screen_top_k_hp``):
    every configuration stops at epoch 0, and the K best are run again to the end once all are
    screened (:func:`aelle.pruners.queue_finalists`; the service does it by itself).

    Where no shipped model applies (a task it has never seen; "auto" with parameters it cannot
    read), Optuna's SuccessiveHalvingPruner (min_resource 1), the strongest learning-curve
    pruner of those replays, or the ``then`` pruner when it is not "none"; a planned screen
    has nothing to rank there, and is refused."""
    table = shipped(model_path)
    after = None if then is None else curve_pruner(then)
    model = None if task not in table else choose(table[task], inputs, hp_of is not None, task)
    if model is None and finalists is not None:
        why = (f"no shipped joint model of {task!r}" if task not in table else
               "the study's parameters cannot be read (a search space other than the task's "
               "own)")
        raise ValueError(f"finalists: a planned screen ranks configurations by the shipped "
                         f"model, and {why}: leave finalists out")
    if model is None:
        if after is None or isinstance(after, optuna.pruners.NopPruner):
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
        return after
    return JointPruner(model, k=k, alpha=alpha, screen=screen, screen_top=screen_top,
                       screen_quantile=screen_quantile, screen_warmup=screen_warmup,
                       screen_records=screen_records, screen_adapt=screen_adapt, learn=learn,
                       stack_from=stack_from, finalists=finalists,
                       store=store, then=after, hp_of=hp_of if model.use_hp else None)


THEN = {"none": optuna.pruners.NopPruner,
        "median": lambda: optuna.pruners.MedianPruner(n_warmup_steps=1),
        "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1)}


def curve_pruner(name: str) -> BasePruner:
    """The learning-curve pruner ``then`` names: none (Optuna's NopPruner), Optuna's Median
    (warm-up 1: from epoch 1) or SuccessiveHalving (min resource 1)."""
    return THEN[check_choice("then", name, tuple(THEN))]()
