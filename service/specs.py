"""A study's specification: what a user submits, validated, and how the coordinator rebuilds
the study's sampler and pruner from it on every load (Optuna persists neither)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import BaseModel, ConfigDict, Field

import tasks
from aelle.curves import StudyMedianPruner
from aelle.model import AeLLEConfig
from aelle.pruner import AeLLEPruner, LEThresholdPruner, ShadowPruner, SpectrumPruner
from aelle.store import SpectrumStore


class SpecError(ValueError):
    """A study specification that cannot be used; the message names the field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DistributionSpec(Strict):
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[str | int | float | bool | None] | None = None

    def to_optuna(self, name: str) -> BaseDistribution:
        where = f"search_space.{name}"
        if self.type == "categorical":
            if not self.choices:
                raise SpecError(f"{where}: a categorical needs a non-empty list of choices")
            if self.low is not None or self.high is not None:
                raise SpecError(f"{where}: a categorical takes choices, not low/high")
            return CategoricalDistribution(tuple(self.choices))
        if self.choices is not None:
            raise SpecError(f"{where}: choices are for categoricals; give low and high")
        if self.low is None or self.high is None:
            raise SpecError(f"{where}: low and high are required")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise SpecError(f"{where}: low and high must be finite")
        if self.low > self.high:
            raise SpecError(f"{where}: low ({self.low}) is above high ({self.high})")
        if self.log and self.low <= 0:
            raise SpecError(f"{where}: a log range needs low > 0, got {self.low}")
        if self.step is not None and (self.step <= 0 or self.log):
            raise SpecError(f"{where}: step must be positive and cannot be combined with log")
        if self.type == "int":
            if self.low != int(self.low) or self.high != int(self.high):
                raise SpecError(f"{where}: an int range needs integer low and high")
            return IntDistribution(int(self.low), int(self.high), log=self.log,
                                   step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)


PRUNERS = ("aelle", "median", "hyperband", "successive_halving", "none", "max_le", "mean_le")
SAMPLERS = ("tpe", "random")


class PrunerSpec(Strict):
    name: Literal[PRUNERS] = "aelle"
    settings: dict[str, Any] = Field(default_factory=dict)
    shadow: bool = False


class SamplerSpec(Strict):
    name: Literal[SAMPLERS] = "tpe"
    seed: int | None = Field(None, ge=0)


class StudyCreate(Strict):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    task: str
    search_space: dict[str, DistributionSpec] | None = None
    direction: Literal["minimize", "maximize"] = "minimize"
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    budget: int = Field(ge=1, le=100_000)
    epochs: int | None = Field(None, ge=1, le=10_000)
    settings: dict[str, Any] = Field(default_factory=dict)


def task_of(spec: StudyCreate):
    try:
        return tasks.get(spec.task)
    except (KeyError, ValueError):
        raise SpecError(f"task: unknown task {spec.task!r}; known: "
                        f"{', '.join(tasks.names())}") from None


def trial_settings(spec: StudyCreate) -> dict[str, Any]:
    """The task settings every trial of the study runs with (epochs included), validated."""
    task = task_of(spec)
    values = dict(spec.settings)
    if spec.epochs is not None:
        values["epochs"] = spec.epochs
    try:
        return task.settings(values).to_dict()
    except (ValueError, TypeError) as e:
        raise SpecError(f"settings: {e}") from None


def search_space(spec: StudyCreate) -> dict[str, BaseDistribution]:
    """The task's default space with the user's entries replacing or adding parameters (any
    setting may be searched by name)."""
    task = task_of(spec)
    space = task.search_space()
    known = set(space) | set(task.settings().to_dict())
    for name, dist in (spec.search_space or {}).items():
        if name not in known:
            raise SpecError(f"search_space.{name}: unknown parameter for task {task.name}; "
                            f"known: {', '.join(sorted(space))} and the settings")
        space[name] = dist.to_optuna(name)
    return space


@dataclass(frozen=True)
class Pretrained:
    """An AeLLE model from a previous study of the same task and that study's final values."""

    study: str
    model: bytes
    values: list[float]


def pretrained_source(spec: StudyCreate) -> str | None:
    """The study an ``aelle`` pruner takes its model from (``settings.pretrained``), if any."""
    if spec.pruner.name != "aelle" or "pretrained" not in spec.pruner.settings:
        return None
    source = spec.pruner.settings["pretrained"]
    if not isinstance(source, str) or not source:
        raise SpecError("pruner.settings.pretrained: give the name of a previous study of the "
                        "same task")
    return source


def validate(spec: StudyCreate, pretrained: Pretrained | None = None) -> None:
    """Everything about a spec that can be checked before any trial runs."""
    trial_settings(spec)
    search_space(spec)
    build_sampler(spec)
    build_pruner(spec, store=None, pretrained=pretrained)


def build_sampler(spec: StudyCreate) -> optuna.samplers.BaseSampler:
    seed = spec.sampler.seed
    if spec.sampler.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


_ALLOWED = {
    "aelle": {"n_startup_trials", "quantile", "explore", "seed", "retrain_every", "region",
              "fallback", "config", "pretrained", "cut_from", "curve", "curve_from"},
    "max_le": {"threshold", "below", "n_startup_trials", "quantile", "explore", "seed",
               "retrain_every", "fallback", "curve", "curve_from"},
    "median": {"n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"},
    "hyperband": {"min_resource", "max_resource", "reduction_factor"},
    "successive_halving": {"min_resource", "reduction_factor", "min_early_stopping_rate"},
    "none": set(),
}
_ALLOWED["mean_le"] = _ALLOWED["max_le"]


def build_pruner(spec: StudyCreate, store: SpectrumStore | None,
                 on_fit: Callable[[SpectrumPruner], None] | None = None,
                 model: bytes | None = None, recorder: Callable | None = None,
                 completed: Callable | None = None,
                 pretrained: Pretrained | None = None) -> optuna.pruners.BasePruner:
    """The study's pruner from its spec (``model``: the last persisted AeLLE model, so that a
    restarted coordinator decides with it at once and keeps retraining; ``pretrained``: what
    ``settings.pretrained`` names, resolved by the caller: that model decides from the first
    report, with the cut taken from its study's final values, and is not retrained)."""
    p = spec.pruner
    unknown = sorted(set(p.settings) - _ALLOWED[p.name])
    if unknown:
        raise SpecError(f"pruner.settings: unknown for {p.name}: {', '.join(unknown)}; "
                        f"allowed: {', '.join(sorted(_ALLOWED[p.name])) or 'none'}")
    kw = dict(p.settings)
    source = pretrained_source(spec)
    kw.pop("pretrained", None)
    if source is not None:
        if pretrained is None or pretrained.study != source:
            raise SpecError(f"pruner.settings.pretrained: study {source!r} has no AeLLE model "
                            "to start from")
        model = pretrained.model
        kw.update(reference_values=pretrained.values, retrain=False)
    try:
        pruner = _make(p.name, kw, store, on_fit, model, spec,
                       {"recorder": recorder, "completed": completed})
    except (ValueError, TypeError) as e:
        raise SpecError(f"pruner.settings: {e}") from None
    return ShadowPruner(pruner) if p.shadow else pruner


# learning-curve pruners a spectrum pruner can fall back on or hand over to, by name
CURVES = {"none": lambda: None, "median": optuna.pruners.MedianPruner,
          "study_median": StudyMedianPruner}


def _make(name, kw, store, on_fit, model, spec, hooks):
    if name in ("aelle", "max_le", "mean_le"):
        for key in ("fallback", "curve"):  # learning-curve pruners by name
            name_ = kw.pop(key, "none")
            if name_ not in CURVES:
                raise ValueError(f"{key} must be one of {', '.join(CURVES)}, got {name_!r}")
            kw[key] = CURVES[name_]()
        kw.setdefault("seed", spec.sampler.seed if spec.sampler.seed is not None else 0)
        if name == "aelle":
            config = kw.pop("config", None) or {}
            if not isinstance(config, dict):
                raise ValueError("config must be an object of AeLLE settings")
            kw.setdefault("retrain", True)
            return AeLLEPruner(config=AeLLEConfig.from_dict(config), store=store,
                               on_fit=on_fit, model=model, **hooks, **kw)
        return LEThresholdPruner(name, store=store, on_fit=on_fit, **hooks, **kw)
    if name == "median":
        return optuna.pruners.MedianPruner(**kw)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**kw)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**kw)
    return optuna.pruners.NopPruner()
