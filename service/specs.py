"""A study's specification: what a user submits, and the task's side of it (the settings every
trial runs with, the search space). :mod:`service.pruning` builds the sampler and pruner."""

from __future__ import annotations

import math
from typing import Any, Literal

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import BaseModel, ConfigDict, Field

import tasks
from aelle.pruners import NAMES as PRUNERS


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


def task_settings(spec: StudyCreate) -> dict[str, Any]:
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
