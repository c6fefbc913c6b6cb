"""How a spectrum pruner meets the world around it, with the plain-Optuna behaviour as default.

A pruner reads spectra from a store, records each decision somewhere, and may want to persist a
newly fitted model. In a plain Optuna script all three go through the trial's user attributes;
the coordinator passes hooks of its own (the reports table, the models table).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial

from aelle.pruners._decision import Decision

if TYPE_CHECKING:
    from aelle.pruners._base import SpectrumPruner
    from aelle.pruners._store import SpectrumStore

ATTR = "aelle:"                                  # every user attribute the pruners write
SPECTRUM_PREFIX = f"{ATTR}spectrum:"              # + step: a reported spectrum
EXPLORE = f"{ATTR}explore"                        # the trial is kept to calibrate the model
SHADOW_PRUNE = f"{ATTR}shadow_prune"              # what a shadowed pruner said at the last step
SHADOW_FIRST = f"{ATTR}shadow_first_prune_step"   # the first step it would have pruned at
RERUN = f"{ATTR}rerun_of"                        # a finalist: the screened trial it runs again
SEED = f"{ATTR}seed"                              # ... and the seed that trial trained with


def set_trial_attr(study: optuna.Study, trial: FrozenTrial, key: str, value) -> None:
    """A user attribute on a running trial a pruner holds as a FrozenTrial (which has no
    setter); Optuna's storage has one."""
    study._storage.set_trial_user_attr(trial._trial_id, key, value)


def trial_marks(trial: FrozenTrial, decision: Decision) -> dict:
    """The attributes later steps read back from the trial itself: the explore mark and, in
    shadow mode, what the shadowed pruner said."""
    marks = {}
    if decision.explore and not trial.user_attrs.get(EXPLORE):
        marks[EXPLORE] = True
    if decision.shadow is not None:
        marks[SHADOW_PRUNE] = decision.shadow
        if decision.shadow and SHADOW_FIRST not in trial.user_attrs:
            marks[SHADOW_FIRST] = decision.step
    return marks


class PrunerHooks:
    """The plain-Optuna hooks: spectra from the trial's user attributes, each decision written
    there as ``aelle:<field>``, nothing to persist after a fit."""

    def __init__(self, store: SpectrumStore | None = None):
        from aelle.pruners._store import SpectrumStore, TrialAttrStore

        if store is not None and not isinstance(store, SpectrumStore):
            raise ValueError(f"store must be a SpectrumStore, but got {type(store).__name__}")
        self.store = store or TrialAttrStore()

    def record(self, study: optuna.Study, trial: FrozenTrial, decision: Decision) -> None:
        """Keep ``decision`` (called by ``prune()``, never by ``decide()``)."""
        attrs = {ATTR + k: v for k, v in decision.attrs().items()}
        for key, value in {**attrs, **trial_marks(trial, decision)}.items():
            set_trial_attr(study, trial, key, value)

    def on_fit(self, pruner: SpectrumPruner) -> None:
        """A new model decides from now on (the coordinator persists it)."""
