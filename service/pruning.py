"""A study's sampler and pruner, rebuilt from its stored spec whenever a process first uses the
study (Optuna persists neither). Names and options come from :func:`aelle.pruners.make`; the
service adds what only it knows: where spectra live, what to do with a new model, the model a
restarted coordinator left, and a previous study's model to start from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna

from aelle.pruners import (
    SPECTRUM,
    DecidingPruner,
    PrunerHooks,
    ShadowPruner,
    SpectrumPruner,
    SpectrumStore,
    deciding,
    make,
    options_of,
)
from service.specs import (
    SpecError,
    StudyCreate,
    check_number,
    check_trials,
    search_space,
    task_settings,
)

# options that carry objects or steer threads: for the coordinator to set, not a study's spec
_INTERNAL = frozenset({"hooks", "model", "retrain", "background", "reference_values", "store",
                       "model_path", "hp_of"})
# the largest value of each count or duration a pruner setting names (by its path below
# pruner.settings; others: MAX_PRUNER_INT): the AeLLE model's sizes and epochs are what a
# coordinator trains itself, in the background of every report
PRUNER_LIMITS: dict[str, int] = {
    "config.dim": 65_536, "config.hidden[]": 8_192, "config.latent": 4_096,
    "config.epochs": 100_000, "config.warmup_epochs": 100_000, "config.ramp_epochs": 100_000,
    "config.batch_size": 65_536, "config.plateau_window": 100_000, "config.components": 4_096,
    "config.max_spectra": 1_000_000, "config.seed": 2**32 - 1, "seed": 2**32 - 1,
}
MAX_PRUNER_INT = 1_000_000
MAX_LIST = 64          # the entries of a list in the pruner's settings (config.hidden)
MAX_TEXT = 1_024       # the characters of a string in the pruner's settings


def check_pruner_values(value, where: str = "pruner.settings", key: str = "") -> None:
    """Every number in the pruner's settings finite and within its limit; lists and strings
    short: what a pruner's own checks leave unbounded."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_pruner_values(v, f"{where}.{k}", f"{key}.{k}" if key else str(k))
    elif isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            raise SpecError(f"{where}: at most {MAX_LIST} entries, got {len(value)}")
        for i, v in enumerate(value):
            check_pruner_values(v, f"{where}[{i}]", f"{key}[]")
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise SpecError(f"{where}: at most {MAX_TEXT} characters")
    else:
        check_number(where, value, PRUNER_LIMITS.get(key, MAX_PRUNER_INT))


@dataclass(frozen=True)
class Pretrained:
    """An AeLLE model from a previous study of the same task and that study's final values."""

    study: str
    model: bytes
    values: list[float]


class ServiceHooks(PrunerHooks):
    """Spectra from the reports table; each new model handed to ``on_fit`` (persisted). The
    coordinator calls ``decide()`` and stores decisions itself, so ``record`` stays unused."""

    def __init__(self, store: SpectrumStore | None,
                 on_fit: Callable[[SpectrumPruner], None] | None = None):
        super().__init__(store)
        self._on_fit = on_fit

    def on_fit(self, pruner: SpectrumPruner) -> None:
        if self._on_fit is not None:
            self._on_fit(pruner)


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
    """Everything about a spec that can be checked before any trial runs: its settings, every
    parameter its space can produce, its sampler and pruner."""
    task_settings(spec)
    search_space(spec)
    check_trials(spec)
    check_pruner_values(spec.pruner.settings)
    check_planned_screen(spec)
    build_sampler(spec)
    build_pruner(spec, ServiceHooks(None), pretrained=pretrained)


DEFAULT_FINALISTS = 3  # the K of the replays' planned screen (bench.anytime --top-k)
# the joint pruner's settings that leave it the default rule: any other asks for a rolling one
_PLAIN_JOINT = frozenset({"inputs", "task"})


def with_default_plan(spec: StudyCreate) -> StudyCreate:
    """The study to store: with the joint pruner's default rule made explicit. A study that
    gives its trial budget (more configurations than the finalists) plans a screen
    (``finalists: 3``), the best rule of the equal-compute replays; one that gives an epoch
    budget alone has no number of configurations to plan with, and screens as it goes (the
    rolling screen), as does one whose pruner settings name anything but ``inputs`` (``auto``
    or ``hp``) or say ``finalists: null``, or whose parameters the shipped model cannot read."""
    p = spec.pruner
    if p.name != "joint" or p.shadow or set(p.settings) - _PLAIN_JOINT \
            or p.settings.get("inputs", "auto") not in ("auto", "hp") \
            or "budget" not in spec.model_fields_set or spec.budget <= DEFAULT_FINALISTS \
            or spec.direction != "minimize" or hyperparameter_reader(spec) is None:
        return spec
    from aelle.pruners._joint_shipped import shipped

    if spec.task not in shipped():
        return spec
    settings = {**p.settings, "finalists": DEFAULT_FINALISTS}
    return spec.model_copy(update={"pruner": p.model_copy(update={"settings": settings})})


def check_planned_screen(spec: StudyCreate) -> None:
    """A planned screen (the joint pruner's ``finalists``) screens ``budget`` configurations,
    then trains its finalists: it needs that number, a study that minimises (the model predicts
    losses) and pruning that acts (not shadow)."""
    if spec.pruner.name != "joint" or spec.pruner.settings.get("finalists") is None:
        return
    where = "pruner.settings.finalists: a planned screen"
    if "budget" not in spec.model_fields_set:
        raise SpecError(f"{where} screens `budget` configurations at epoch 0 before its "
                        "finalists train: give budget (trials)")
    if spec.direction != "minimize":
        raise SpecError(f"{where} ranks configurations by a predicted loss: the study must "
                        "minimize")
    if spec.pruner.shadow:
        raise SpecError(f"{where} stops every configuration it screens; in shadow mode "
                        "nothing stops: leave one of them out")


def hyperparameter_reader(spec: StudyCreate) -> Callable | None:
    """params -> the hyperparameter vector the shipped joint models were fitted on
    (:func:`tasks.hyperparameters.hp_features`), for a study of a zoo task over the task's own
    search space; None otherwise (another space: its parameters mean something else)."""
    from tasks.hyperparameters import TASKS, hp_features

    if spec.search_space is not None or spec.task not in TASKS:
        return None
    settings = dict(spec.settings)
    return lambda params: hp_features(spec.task, params, settings)


def run_settings(spec: StudyCreate, pruner: DecidingPruner) -> dict:
    """The settings every trial of the study runs with: the task's (:func:`task_settings`),
    without the untrained network's spectrum where the pruner does not read it and the study
    does not ask for it (``settings.spectrum_initial``): a screening pruner refuses most
    configurations at step 0, and each would pay a probe that decides nothing. A foreign
    task's settings stay as given: its workers' task may not know the setting."""
    settings = task_settings(spec)
    if "spectrum_initial" in settings and "spectrum_initial" not in spec.settings \
            and not pruner.reads_initial_spectrum:
        settings["spectrum_initial"] = False
    return settings


def build_sampler(spec: StudyCreate) -> optuna.samplers.BaseSampler:
    seed = spec.sampler.seed
    if spec.sampler.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def build_pruner(spec: StudyCreate, hooks: PrunerHooks, model: bytes | None = None,
                 pretrained: Pretrained | None = None) -> DecidingPruner:
    """The study's pruner from its spec. ``model``: the last persisted AeLLE model, so that a
    restarted coordinator decides with it at once and keeps retraining; ``pretrained``: what
    ``settings.pretrained`` names, resolved by the caller: that model decides from the first
    report, with the cut taken from its study's final values, and is not retrained."""
    p = spec.pruner
    allowed = sorted(set(options_of(p.name)) - _INTERNAL
                     | ({"pretrained"} if p.name == "aelle" else set()))
    unknown = sorted(set(p.settings) - set(allowed))
    if unknown:
        raise SpecError(f"pruner.settings: unknown for {p.name}: {', '.join(unknown)}; "
                        f"allowed: {', '.join(allowed) or 'none'}")
    options = dict(p.settings)
    options.pop("pretrained", None)
    source = pretrained_source(spec)
    if source is not None:
        if pretrained is None or pretrained.study != source:
            raise SpecError(f"pruner.settings.pretrained: study {source!r} has no AeLLE model "
                            "to start from")
        model = pretrained.model
        options.update(reference_values=pretrained.values, retrain=False)
    if p.name == "joint":  # the shipped model of the study's task, spectra from the reports
        options.setdefault("task", spec.task)
        options["store"] = hooks.store
        hp_of = hyperparameter_reader(spec)
        if hp_of is not None:
            options["hp_of"] = hp_of
    if p.name in SPECTRUM:
        options.setdefault("seed", spec.sampler.seed if spec.sampler.seed is not None else 0)
        options["hooks"] = hooks
        if p.name == "aelle":
            options.setdefault("retrain", True)
            options.update(model=model, background=True)
    try:
        pruner = make(p.name, **options)
    except (ValueError, TypeError) as e:
        raise SpecError(f"pruner.settings: {e}") from None
    pruner = deciding(pruner, hooks)
    return ShadowPruner(pruner) if p.shadow else pruner
