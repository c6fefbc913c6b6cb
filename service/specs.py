"""A study's specification: what a user submits, and the task's side of it (the settings every
trial runs with, the search space). :mod:`service.pruning` builds the sampler and pruner.

The coordinator does not need a task's code. A task installed here (the zoo, or a plugin) is
checked in full: its settings, every parameter value its space can produce, the spectrum each
trial reports. A task that only the workers have (:class:`ForeignTask`) is checked in what every
task shares: the spec gives the search space and the epochs, every bound and setting is finite
and within the caps below, the shared settings (:class:`tasks.Settings`) have their types and
ranges, and each trial's first spectrum fixes the length of the rest."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator

import tasks
from aelle.pruners import NAMES as PRUNERS
from tasks.base import Settings, Task, suggest_all


class SpecError(ValueError):
    """A study specification that cannot be used; the message names the field."""


# Bounds a spec's numbers must keep: beyond them a search range overflows the samplers'
# arithmetic (a float range of +-1e308 has an infinite width) and a setting asks a worker for
# more memory or time than any machine has.
MAX_MAGNITUDE = 1e12           # any float a spec holds: search bounds, settings
MAX_INT = 10**9                # any integer setting not named in SETTING_LIMITS
MAX_TRIALS = 100_000          # a study's trial budget
MAX_BUDGET_EPOCHS = 10**8      # a study's epoch budget
MAX_EXPONENTS = 16_384         # the most exponents a report may carry
MAX_CHOICES = 1_000            # the choices of one categorical
MAX_CHOICE_LENGTH = 256        # the characters of one string choice
# the largest value of each size, count and duration a task setting names
SETTING_LIMITS: dict[str, int] = {
    "epochs": 10_000, "hidden": 4_096, "steps": 1_000_000, "batch_size": 65_536,
    "train_size": 10_000_000, "val_size": 10_000_000, "seq_len": 100_000,
    "max_chars": 1_000_000_000, "learn_every": 1_000_000,
    "spectrum_sequences": 1_024, "spectrum_steps": 100_000, "spectrum_warmup": 100_000,
    "spectrum_k": MAX_EXPONENTS, "spectrum_t_on": 10_000, "spectrum_every": 10_000,
}
# settings a study fixes for all its trials: a search of them would change what a trial is
# (the epochs bound every report and the last-epoch rule) or where it runs
NOT_SEARCHABLE = ("epochs", "device")
MAX_PARAMETERS = 256           # the entries of a search space, and of a study's settings
MAX_NAME = 128                 # the characters of a parameter's or a setting's name
SHARED_SETTINGS = frozenset(f.name for f in dataclasses.fields(Settings))


def check_number(where: str, value: Any, limit: float | None = None) -> None:
    """A number of a spec: finite, and within ``limit`` (integers) or ``MAX_MAGNITUDE``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{where}: must be a finite number, got {value}")
    if isinstance(value, int):
        top = MAX_INT if limit is None else limit
        if abs(value) > top:
            raise SpecError(f"{where}: at most {top:,}, got {value:,}")
    elif abs(value) > MAX_MAGNITUDE:
        raise SpecError(f"{where}: magnitude at most {MAX_MAGNITUDE:g}, got {value:g}")


def check_setting_values(where: str, values: dict[str, Any]) -> None:
    """Every setting within its limit (SETTING_LIMITS, else the general bounds)."""
    for name, value in values.items():
        check_number(f"{where}.{name}" if where else name, value, SETTING_LIMITS.get(name))


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
            if len(self.choices) > MAX_CHOICES:
                raise SpecError(f"{where}: at most {MAX_CHOICES} choices, got "
                                f"{len(self.choices)}")
            for i, choice in enumerate(self.choices):
                check_number(f"{where}.choices[{i}]", choice)
                if isinstance(choice, str) and len(choice) > MAX_CHOICE_LENGTH:
                    raise SpecError(f"{where}.choices[{i}]: at most {MAX_CHOICE_LENGTH} "
                                    "characters")
            if len(set(map(repr, self.choices))) != len(self.choices):
                raise SpecError(f"{where}: the choices repeat a value")
            return CategoricalDistribution(tuple(self.choices))
        if self.choices is not None:
            raise SpecError(f"{where}: choices are for categoricals; give low and high")
        if self.low is None or self.high is None:
            raise SpecError(f"{where}: low and high are required")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise SpecError(f"{where}: low and high must be finite")
        if max(abs(self.low), abs(self.high)) > MAX_MAGNITUDE:
            raise SpecError(f"{where}: low and high must lie within +-{MAX_MAGNITUDE:g}")
        if self.step is not None and not math.isfinite(self.step):
            raise SpecError(f"{where}: step must be finite")
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
    name: Literal[PRUNERS] = "joint"
    settings: dict[str, Any] = Field(default_factory=dict)
    shadow: bool = False


class SamplerSpec(Strict):
    name: Literal[SAMPLERS] = "tpe"
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class StudyCreate(Strict):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    task: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    search_space: dict[str, DistributionSpec] | None = None
    direction: Literal["minimize", "maximize"] = "minimize"
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    budget: int = Field(MAX_TRIALS, ge=1, le=MAX_TRIALS, description="the most trials it "
                        "starts (a retry replaces the trial it retries); may be left out where "
                        "budget_epochs is given")
    budget_epochs: int | None = Field(None, ge=1, le=MAX_BUDGET_EPOCHS, description="a compute "
                                      "budget: no new trial starts once the study's trials "
                                      "have trained this many epochs, retries included (the "
                                      "untrained network's report is not an epoch; trials "
                                      "running then finish, and queued retries still run)")
    epochs: int | None = Field(None, ge=1, le=10_000)
    settings: dict[str, Any] = Field(default_factory=dict)
    max_failed: int = Field(20, ge=1, le=100_000, description="the study is stopped once "
                            "this many trials failed for good (an error, or retries spent)")
    max_retries: int = Field(100, ge=0, le=1_000_000, description="the study is stopped once "
                             "more trials than this were queued again (a stale heartbeat, "
                             "a worker handing a trial back)")

    @model_validator(mode="after")
    def _a_budget(self) -> StudyCreate:
        if "budget" not in self.model_fields_set and self.budget_epochs is None:
            raise ValueError("give a budget: budget (trials), budget_epochs (epochs trained), "
                             "or both")
        return self


class ForeignTask:
    """A task this coordinator does not have: trials sample the spec's space as it is, and a
    trial's spectrum has the length its first spectrum had."""

    version = None

    def __init__(self, name: str):
        self.name = name

    def suggest(self, trial, space: dict[str, BaseDistribution], fixed=None) -> dict[str, Any]:
        return suggest_all(trial, space, fixed)

    def spectrum_size(self, params: dict[str, Any], settings: dict[str, Any]) -> None:
        return None


def installed(name: str) -> Task | None:
    """The task named ``name`` if this process has its code (the zoo, a plugin)."""
    try:
        return tasks.get(name)
    except (KeyError, ValueError):
        return None


def task_of(spec: StudyCreate) -> Task | ForeignTask:
    task = installed(spec.task)
    return ForeignTask(spec.task) if task is None else task


def task_version(spec: StudyCreate) -> str | None:
    """The version of the study's task on this coordinator (None: it does not have it)."""
    return getattr(installed(spec.task), "version", None)


def _foreign(spec: StudyCreate, what: str) -> SpecError:
    return SpecError(f"task: unknown task {spec.task!r} on this coordinator (installed: "
                     f"{', '.join(tasks.names())}); a study of a task that only its workers "
                     f"have must give {what}")


def task_settings(spec: StudyCreate) -> dict[str, Any]:
    """The task settings every trial of the study runs with (epochs included), validated."""
    task = task_of(spec)
    values = dict(spec.settings)
    if spec.epochs is not None:
        values["epochs"] = spec.epochs
    if isinstance(task, ForeignTask):
        return _foreign_settings(spec, values)
    try:
        resolved = task.settings(values).to_dict()
    except (ValueError, TypeError) as e:
        raise SpecError(f"settings: {e}") from None
    check_setting_values("settings", resolved)
    return resolved


def _foreign_settings(spec: StudyCreate, values: dict[str, Any]) -> dict[str, Any]:
    """A foreign task's settings as given (its own defaults are the workers' to apply), the
    shared ones checked as every task checks them."""
    if "epochs" not in values:
        raise _foreign(spec, "the study's epochs")
    if len(values) > MAX_PARAMETERS:
        raise SpecError(f"settings: at most {MAX_PARAMETERS}, got {len(values)}")
    for name, value in values.items():
        _check_name("settings", name)
        if value is not None and not isinstance(value, bool | int | float | str):
            raise SpecError(f"settings.{name}: a setting is a number, a string, a boolean or "
                            f"null, got {type(value).__name__}")
        if isinstance(value, str) and len(value) > MAX_CHOICE_LENGTH * 16:
            raise SpecError(f"settings.{name}: at most {MAX_CHOICE_LENGTH * 16} characters")
    _shared(values, "settings")
    check_setting_values("settings", values)
    return values


def _shared(values: dict[str, Any], where: str) -> None:
    """The shared settings among ``values`` pass the checks every task makes of them."""
    try:
        Settings.from_dict({k: v for k, v in values.items() if k in SHARED_SETTINGS})
    except (ValueError, TypeError) as e:
        raise SpecError(f"{where}: {e}") from None


def _check_name(where: str, name: str) -> None:
    if not name.isidentifier() or len(name) > MAX_NAME:
        raise SpecError(f"{where}.{name[:MAX_NAME]}: a name is a Python identifier of at most "
                        f"{MAX_NAME} characters")


def search_space(spec: StudyCreate) -> dict[str, BaseDistribution]:
    """The task's default space with the user's entries replacing or adding parameters (any
    setting may be searched by name); a foreign task's space is the spec's."""
    task = task_of(spec)
    foreign = isinstance(task, ForeignTask)
    if foreign and not spec.search_space:
        raise _foreign(spec, "its search_space")
    space = {} if foreign else task.search_space()
    known = set(space) | set(task.settings().to_dict()) if not foreign else None
    if len(spec.search_space or {}) > MAX_PARAMETERS:
        raise SpecError(f"search_space: at most {MAX_PARAMETERS} parameters, got "
                        f"{len(spec.search_space)}")
    for name, dist in (spec.search_space or {}).items():
        if foreign:
            _check_name("search_space", name)
        elif name not in known:
            raise SpecError(f"search_space.{name}: unknown parameter for task {task.name}; "
                            f"known: {', '.join(sorted(space))} and the settings")
        if name in NOT_SEARCHABLE:
            raise SpecError(f"search_space.{name}: {name} is fixed for the whole study; set "
                            f"it as {'the study' if name == 'epochs' else 'a setting'}'s "
                            f"{name}, not as a search")
        space[name] = dist.to_optuna(name)
    return space


def corners(dist: BaseDistribution) -> list[Any]:
    """The values of a distribution at its edges: every choice, or the lowest and highest
    values it can produce (every task check is monotonic between them)."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution | FloatDistribution):
        return [dist.low, dist.high] if dist.low != dist.high else [dist.low]
    raise SpecError(f"unsupported distribution {type(dist).__name__}")


def check_trials(spec: StudyCreate) -> None:
    """Every parameter value the space can produce, checked by the task as a trial of it would
    be (its parameter checks, the settings it overrides, the spectrum it reports), so that no
    trial of a stored study meets a check its spec could have failed.

    Each parameter is tried at each of its corners with the others at a reference value (the
    task's own default space, or the study's setting), so that a refusal names the one
    parameter at fault; then every numeric parameter at its highest value at once, the largest
    network the space allows."""
    task = task_of(spec)
    settings = task_settings(spec)
    space = search_space(spec)
    if isinstance(task, ForeignTask):
        _check_foreign_trials(space, settings)
        return
    default = task.search_space()
    reference = {name: corners(dist)[0] for name, dist in default.items()}

    def probe(params: dict[str, Any], where: str) -> None:
        try:
            size = task.spectrum_size(params, settings)
        except (ValueError, TypeError, KeyError) as e:
            raise SpecError(f"{where}: {_message(e)}") from None
        check_setting_values(where, params)
        if size > MAX_EXPONENTS:
            raise SpecError(f"{where}: a trial would report {size:,} exponents; at most "
                            f"{MAX_EXPONENTS:,} (lower hidden, or set spectrum_k)")

    for name, dist in space.items():
        for value in corners(dist):
            probe({**reference, name: value}, f"search_space.{name} = {value!r}")
    top = {**reference}
    for name, dist in space.items():
        if not isinstance(dist, CategoricalDistribution):
            top[name] = dist.high
    probe(top, "search_space (every numeric parameter at its highest)")


def _check_foreign_trials(space: dict[str, BaseDistribution], settings: dict[str, Any]) -> None:
    """What can be checked of a foreign task's trials: every value of a parameter named like a
    setting within that setting's cap, and a shared setting's within its range and type."""
    for name, dist in space.items():
        for value in corners(dist):
            where = f"search_space.{name} = {value!r}"
            check_setting_values(where, {name: value})
            if name in SHARED_SETTINGS:
                _shared({**settings, name: value}, where)


def _message(e: Exception) -> str:
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
