"""What every task provides, and the settings every task shares.

A task is a recipe: a default search space, fixed settings a study may override, and ``build``,
which turns one trial's parameters into a :class:`TrialRun` (data, model, optimiser). The
training loop (:mod:`tasks.training`) drives a TrialRun without knowing the task.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import optuna
import torch
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from torch import Tensor, nn

from aelle.cells.base import Cell

SPECTRUM_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Settings:
    """Fixed settings of a trial (a study may override any of them by name).

    spectrum_*: how the spectrum after each epoch is taken: ``spectrum_sequences`` input
    sequences of ``spectrum_warmup`` + ``spectrum_steps`` steps from the validation data,
    ``spectrum_k`` leading exponents (None: all), ``spectrum_state`` the state convention of
    ``aelle.cell_for`` ("auto": the task's informative convention for the trial's
    architecture, :meth:`Task.auto_state`), QR every ``spectrum_t_on`` steps, every
    ``spectrum_every`` epochs (the last epoch always has one), in ``spectrum_dtype`` ("float64"
    by default: float32 rounding, amplified along a chaotic trajectory, moves the leading
    exponents, and a fast-growing state overflows float32 within a probe longer than the
    sequences the task trains on).
    ``report_initial``: also report epoch 0, the untrained network; ``spectrum_initial``: take
    its spectrum too (the coordinator turns it off for a study whose pruner does not read it:
    there it would cost a probe per screened configuration and decide nothing).
    """

    epochs: int = 10
    device: str = "auto"
    spectrum_sequences: int = 10
    spectrum_steps: int = 100
    spectrum_warmup: int = 20
    spectrum_k: int | None = None
    spectrum_state: str = "auto"
    spectrum_dtype: str = "float64"
    spectrum_t_on: int = 1
    spectrum_every: int = 1
    report_initial: bool = True
    spectrum_initial: bool = True

    def __post_init__(self):
        positive(self, "epochs", "spectrum_sequences", "spectrum_steps", "spectrum_every",
                 "spectrum_t_on")
        if self.spectrum_warmup < 0:
            raise ValueError(f"spectrum_warmup must be >= 0, got {self.spectrum_warmup}")
        if self.spectrum_k is not None and self.spectrum_k < 1:
            raise ValueError(f"spectrum_k must be >= 1 or None, got {self.spectrum_k}")
        if self.spectrum_state not in ("auto", "full", "hidden"):
            raise ValueError(f"spectrum_state must be 'auto', 'full' or 'hidden', "
                             f"got {self.spectrum_state!r}")
        if self.spectrum_dtype not in SPECTRUM_DTYPES:
            raise ValueError(f"spectrum_dtype must be one of {', '.join(SPECTRUM_DTYPES)}, "
                             f"got {self.spectrum_dtype!r}")
        if self.device != "auto" and not self.device.startswith(("cpu", "cuda")):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {self.device!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None = None):
        """These settings with ``values`` overriding the defaults; unknown names and values of
        the wrong type raise ValueError naming them."""
        values = dict(values or {})
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)} for {cls.__name__}; "
                             f"known: {', '.join(sorted(known))}")
        return cls(**{name: _coerce(name, v, hints[name]) for name, v in values.items()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def positive(settings, *names: str) -> None:
    for name in names:
        v = getattr(settings, name)
        if v is not None and v <= 0:
            raise ValueError(f"{name} must be positive, got {v}")


def _coerce(name: str, value: Any, hint) -> Any:
    """Check a setting against its annotation (int, float, bool, str, or X | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ValueError(f"setting {name} may not be null")
    for t in options:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is float and isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"setting {name} must be finite, got {value}")
            return float(value)
        if t is str and isinstance(value, str):
            return value
    wanted = " or ".join("null" if t is type(None) else t.__name__ for t in options)
    raise ValueError(f"setting {name} must be {wanted}, got {value!r}")


@dataclass(frozen=True)
class SpectrumProbe:
    """The input batch that drives the spectrum: (B, warmup + T, I), and optional initial
    states (B, S) (an autonomous network is probed from points of its own trajectory)."""

    inputs: Tensor
    warmup: int
    h0: Tensor | None = None


class TrialRun(ABC):
    """One network of a task, with its data and optimiser, being trained epoch by epoch."""

    @abstractmethod
    def train_epoch(self) -> float:
        """Train one epoch; return the mean training loss."""

    @abstractmethod
    def validate(self) -> float:
        """The validation loss of the network as it is now."""

    @abstractmethod
    def lyapunov_cell(self, state: str, dtype: torch.dtype | None = None) -> Cell:
        """The trained network as an analysable cell (weights copied; each converted to
        ``dtype`` before any is combined with another, so that a float32 network analysed in
        float64 is exactly the float64 map)."""

    @abstractmethod
    def spectrum_probe(self) -> SpectrumProbe:
        """Validation inputs that drive the spectrum computation."""

    def network(self) -> nn.Module:
        """The network being trained, whose state dict is all a trial's artifact stores of it
        (loading one into a fresh run of the same parameters, settings and seed gives the
        trained run back). Default: the run's ``model`` attribute."""
        model = getattr(self, "model", None)
        if isinstance(model, nn.Module):
            return model
        raise NotImplementedError(f"{type(self).__name__} keeps no `model` module: define "
                                  "network() to save and load its trained network")


class Task(ABC):
    """A task, registered by name (the zoo's, or a plugin's: :mod:`tasks.plugins`).

    ``version``: what makes trials of the task comparable. Two workers whose task has the same
    name and version must train the same thing for the same parameters (data, model, loss);
    change it when they would not. A study runs on one version only."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    settings_class: ClassVar[type[Settings]] = Settings
    loss_name: ClassVar[str] = "loss"

    def settings(self, values: dict[str, Any] | Settings | None = None) -> Settings:
        if isinstance(values, Settings):
            if not isinstance(values, self.settings_class):
                raise TypeError(f"{self.name} takes {self.settings_class.__name__}, "
                                f"got {type(values).__name__}")
            return values
        return self.settings_class.from_dict(values)

    @abstractmethod
    def search_space(self) -> dict[str, BaseDistribution]:
        """The dissertation's ranges, as Optuna distributions."""

    def suggest(self, trial: optuna.Trial, space: dict[str, BaseDistribution] | None = None,
                fixed: dict[str, Any] | None = None) -> dict[str, Any]:
        """Sample one trial's parameters from ``space`` (default: the task's); parameters in
        ``fixed`` are taken as given, not sampled."""
        return suggest_all(trial, self.search_space() if space is None else space, fixed)

    def check_params(self, params: dict[str, Any], settings: Settings) -> None:
        """Raise ValueError naming a missing or unknown parameter (overrides of settings by
        name are allowed: a search space may search any numeric setting)."""
        space = self.search_space()
        allowed = set(space) | {f.name for f in dataclasses.fields(settings)}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for task {self.name}; "
                             f"known: {', '.join(sorted(space))} and the settings")

    def resolve(self, params: dict[str, Any], settings: Settings | dict | None) -> Settings:
        """Validate ``params``; return the settings, with parameters named like a setting
        overriding it and an "auto" state convention replaced by the trial's own."""
        settings = self.settings(settings)
        self.check_params(params, settings)
        overrides = {k: v for k, v in params.items() if k in settings.to_dict()}
        if overrides.get("spectrum_state", settings.spectrum_state) == "auto":
            overrides["spectrum_state"] = self.auto_state(params)
        return self.settings({**settings.to_dict(), **overrides})

    def auto_state(self, params: dict[str, Any]) -> str:
        """The state convention "auto" stands for in a trial of ``params``: the one whose
        spectrum carries the network's dynamics. Default: "hidden" (the dissertation's; a task
        of two-state architectures says otherwise where measured)."""
        return "hidden"

    def spectrum_size(self, params: dict[str, Any], settings: Settings | dict | None) -> int:
        """How many exponents a trial of ``params`` reports (what a coordinator checks a
        reported spectrum against), without building the network."""
        settings = self.resolve(params, settings)
        n = self.state_size(params, settings)
        return n if settings.spectrum_k is None else min(settings.spectrum_k, n)

    @abstractmethod
    def state_size(self, params: dict[str, Any], settings: Settings) -> int:
        """The dimension of the analysed state under ``settings.spectrum_state``."""

    @abstractmethod
    def build(self, params: dict[str, Any], settings: Settings, seed: int,
              device: torch.device) -> TrialRun:
        """A fresh network for ``params``, seeded, on ``device``."""


def suggest_all(trial: optuna.Trial, space: dict[str, BaseDistribution],
                fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """One value of every parameter of ``space``, those in ``fixed`` taken as given."""
    fixed = dict(fixed or {})
    return {**{name: suggest(trial, name, dist) for name, dist in space.items()
               if name not in fixed}, **fixed}


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """``trial.suggest_*`` for any of Optuna's distributions."""
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise TypeError(f"unsupported distribution {type(dist).__name__} for {name}")


def require(params: dict[str, Any], name: str, kind: type | tuple[type, ...]):
    """A parameter by name, of the given type; ValueError otherwise."""
    if name not in params:
        raise ValueError(f"missing parameter {name!r}")
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"parameter {name} must be {_kind_name(kind)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"parameter {name} must be finite, got {value}")
    return value


def _kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def resolve_device(name: str) -> torch.device:
    """'auto': CUDA when present, the CPU otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device
