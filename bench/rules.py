"""The pruners the benchmarks compare, by name: as the service's pruner spec for the live
benchmark (``bench.pruning``), and as Optuna pruner objects for the replay
(``bench.pruning_replay``, built by the registry ``aelle.pruners.make``). Both use AeLLE
with the same settings (``AELLE``).

Variants of the live benchmark:

- none: the reference; prunes nothing, AeLLE in shadow mode records what it would have decided;
- median, successive_halving, hyperband: Optuna's pruners, deciding from epoch 1 on (epoch 0 is
  the untrained network);
- max_le: the LE threshold;
- aelle: AeLLE fitted in the study; aelle_pre: AeLLE pre-trained on a previous study of the same
  task (``bench.pruning`` names it); aelle_completed: the cut from the completed trials only;
- aelle_curve, aelle_pre_curve: the spectrum decides at epoch 0 only, Optuna's median rule from
  epoch 1 (the service's ``curve: median``);
- aelle_curve_study, aelle_pre_curve_study: the same with the study's median after epoch 0, the
  trials stopped so far counted as worse (``curve: study_median``,
  ``aelle.pruners.StudyMedianPruner``).

The replay adds "nothing" (a plain reference, no shadow fits) and "study_median" alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna

from aelle.model import AeLLE, AeLLEConfig
from aelle.pruners import AeLLEPruner, ByStep, ShadowPruner, make

VARIANTS = ("none", "median", "successive_halving", "hyperband", "max_le", "aelle", "aelle_pre",
            "aelle_completed", "aelle_curve", "aelle_pre_curve", "aelle_curve_study",
            "aelle_pre_curve_study")
AELLE = {"n_startup_trials": 8, "explore": 0.1, "retrain_every": 2}


def service_pruner(variant: str, epochs: int) -> dict:
    """The pruner spec of a study of ``variant`` with ``epochs`` epochs per trial."""
    if variant == "none":
        return {"name": "aelle", "settings": AELLE, "shadow": True}
    if variant == "median":
        return {"name": "median", "settings": {"n_warmup_steps": 1}}
    if variant == "successive_halving":
        return {"name": "successive_halving", "settings": {"min_resource": 1}}
    if variant == "hyperband":
        return {"name": "hyperband", "settings": {"min_resource": 1, "max_resource": epochs}}
    if variant == "max_le":
        return {"name": "max_le", "settings": AELLE}
    if variant == "aelle_completed":
        return {"name": "aelle", "settings": {**AELLE, "cut_from": "completed"}}
    if variant.endswith("_curve"):
        return {"name": "aelle", "settings": {**AELLE, "curve": "median"}}
    if variant.endswith("_curve_study"):
        return {"name": "aelle", "settings": {**AELLE, "curve": "study_median"}}
    # aelle, and aelle_pre: bench.pruning names the study its model comes from
    return {"name": "aelle", "settings": dict(AELLE)}


def _aelle(seed: int, **kw) -> AeLLEPruner:
    return make("aelle", **{**AELLE, "seed": seed, "background": False, **kw})


def _pretrained(seed: int, previous: list[dict]) -> AeLLEPruner:
    """AeLLE fitted on a previous study's spectra (every epoch, labelled with its final)."""
    spectra, finals = [], []
    for t in previous:
        if t["state"] == "complete":
            for e in t["epochs"]:
                spectra.append(e["spectrum"])
                finals.append(t["final_value"])
    model = AeLLE(AeLLEConfig()).fit(spectra, np.asarray(finals))
    values = [t["final_value"] for t in previous if t["state"] == "complete"]
    return _aelle(seed, model=model, retrain=False, reference_values=values)


def _then(spectrum: AeLLEPruner, curve: str) -> ByStep:
    """The spectrum decides at epoch 0 only, the learning-curve pruner ``curve`` from epoch 1."""
    return ByStep(spectrum, then=make(curve), from_step=1)


# name -> (seed, epochs, previous study) -> the replay's pruner
RULES: dict[str, Callable[[int, int, list[dict] | None], optuna.pruners.BasePruner]] = {
    "none": lambda seed, epochs, prev: ShadowPruner(_aelle(seed)),
    "nothing": lambda seed, epochs, prev: make("none"),
    "median": lambda seed, epochs, prev: make("median", n_warmup_steps=1),
    "successive_halving": lambda seed, epochs, prev: make("successive_halving", min_resource=1),
    "hyperband": lambda seed, epochs, prev: make("hyperband", min_resource=1,
                                                 max_resource=epochs),
    "max_le": lambda seed, epochs, prev: make("max_le", **AELLE, seed=seed),
    "aelle": lambda seed, epochs, prev: _aelle(seed),
    "aelle_pre": lambda seed, epochs, prev: _pretrained(seed, prev),
    "aelle_curve": lambda seed, epochs, prev: _then(_aelle(seed), "median"),
    "aelle_pre_curve": lambda seed, epochs, prev: _then(_pretrained(seed, prev), "median"),
    "study_median": lambda seed, epochs, prev: make("study_median", n_warmup_steps=1),
    "aelle_curve_study": lambda seed, epochs, prev: _then(_aelle(seed), "study_median"),
    "aelle_pre_curve_study": lambda seed, epochs, prev: _then(_pretrained(seed, prev),
                                                              "study_median"),
}
