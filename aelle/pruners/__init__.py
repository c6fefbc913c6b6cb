"""Optuna pruners that read a trial's Lyapunov spectrum, and the one table of pruners by name.

``make(name, **options)`` builds any pruner the service, the examples and the benchmarks name:
Optuna's own and the spectrum pruners. A spectrum pruner takes ``fallback`` and ``curve`` by
name (the learning-curve pruners of :data:`CURVES`) and ``curve``/``curve_from`` make it a
:class:`ByStep`: the spectrum decides before ``curve_from``, the curve from there on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial

import optuna

from aelle.model import AeLLEConfig
from aelle.pruners._aelle import AeLLEPruner
from aelle.pruners._base import DecidingPruner, SpectrumPruner, TrainingData, training_data
from aelle.pruners._compat import quiet_experimental
from aelle.pruners._decision import Decision, Kind
from aelle.pruners._hooks import ATTR, RERUN, SEED, PrunerHooks, set_trial_attr, trial_marks
from aelle.pruners._joint import (
    JointModel,
    JointPruner,
    queue_finalists,
    rerun,
    reruns,
    seed_of,
)
from aelle.pruners._joint_shipped import joint_pruner
from aelle.pruners._store import SpectrumStore, TrialAttrStore, report_spectrum
from aelle.pruners._study_median import StudyMedianPruner
from aelle.pruners._threshold import LEThresholdPruner
from aelle.pruners._wrappers import ByStep, PlainPruner, ShadowPruner, deciding
from aelle.validate import check_int

__all__ = [
    "ATTR",
    "CURVES",
    "NAMES",
    "RERUN",
    "SEED",
    "SPECTRUM",
    "AeLLEPruner",
    "ByStep",
    "DecidingPruner",
    "Decision",
    "JointModel",
    "JointPruner",
    "Kind",
    "LEThresholdPruner",
    "PlainPruner",
    "PrunerHooks",
    "ShadowPruner",
    "SpectrumPruner",
    "SpectrumStore",
    "StudyMedianPruner",
    "TrainingData",
    "TrialAttrStore",
    "deciding",
    "make",
    "options_of",
    "queue_finalists",
    "report_spectrum",
    "rerun",
    "reruns",
    "seed_of",
    "set_trial_attr",
    "training_data",
    "trial_marks",
]

def _percentile(percentile: float = 25.0, n_startup_trials: int = 5, n_warmup_steps: int = 0,
                interval_steps: int = 1, n_min_trials: int = 1):
    return optuna.pruners.PercentilePruner(percentile, n_startup_trials, n_warmup_steps,
                                           interval_steps, n_min_trials=n_min_trials)


def _patient(wrapped: str = "median", patience: int = 1, min_delta: float = 0.0):
    with quiet_experimental():
        return optuna.pruners.PatientPruner(_curve("wrapped", wrapped), patience, min_delta)


_FACTORIES: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": _percentile,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "study_median": StudyMedianPruner,
    "patient": _patient,
    "aelle": AeLLEPruner,
    "max_le": partial(LEThresholdPruner, "max_le"),
    "mean_le": partial(LEThresholdPruner, "mean_le"),
    "joint": joint_pruner,
}
NAMES = tuple(_FACTORIES)
SPECTRUM = ("aelle", "max_le", "mean_le")  # the pruners that read the spectrum
# the learning-curve pruners a spectrum pruner can fall back on, or hand over to, by name
CURVES = ("none", "median", "study_median")
_COMPOSED = ("fallback", "curve", "curve_from")  # the spectrum pruners' options by name


def options_of(name: str) -> tuple[str, ...]:
    """The options ``make(name, ...)`` takes."""
    factory = _factory(name)
    target = factory.func if isinstance(factory, partial) else factory
    own = [p for p in inspect.signature(target).parameters.values()
           if p.kind == p.KEYWORD_ONLY or (p.kind == p.POSITIONAL_OR_KEYWORD
                                           and p.name != "self")]
    if isinstance(factory, partial):
        own = own[len(factory.args):]
    names = [p.name for p in own]
    if name in SPECTRUM:
        base = inspect.signature(SpectrumPruner.__init__).parameters
        names += [n for n in base if n != "self" and n not in names]
        names += [n for n in _COMPOSED if n not in names]
    return tuple(sorted(set(names)))


def make(name: str, **options) -> optuna.pruners.BasePruner:
    """The pruner ``name`` with ``options``; ValueError naming what is wrong otherwise."""
    factory = _factory(name)
    allowed = options_of(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown for {name}: {', '.join(unknown)}; allowed: "
                         f"{', '.join(allowed) or 'none'}")
    if name not in SPECTRUM:
        try:
            return factory(**options)
        except TypeError as e:  # a value of the wrong type inside Optuna's constructor
            raise ValueError(f"{name}: {e}") from None
    options = dict(options)
    fallback = _curve("fallback", options.pop("fallback", None))
    curve = _curve("curve", options.pop("curve", None))
    curve_from = check_int("curve_from", options.pop("curve_from", 1), low=1)
    if isinstance(options.get("config"), dict):
        options["config"] = AeLLEConfig.from_dict(options["config"])
    pruner = factory(fallback=fallback, **options)
    return pruner if curve is None else ByStep(pruner, curve, curve_from)


def _factory(name: str):
    try:
        return _FACTORIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown pruner {name!r}; known: {', '.join(NAMES)}") from None


def _curve(key: str, value) -> optuna.pruners.BasePruner | None:
    """A learning-curve pruner given by name (or as itself)."""
    if value is None or isinstance(value, optuna.pruners.BasePruner):
        return value
    if value not in CURVES:
        raise ValueError(f"{key} must be one of {', '.join(CURVES)}, got {value!r}")
    return None if value == "none" else _FACTORIES[value]()
