"""A learning-curve rule for the steps after the spectrum has decided.

Optuna's median rule compares a trial with the completed trials at the same step. Once another
rule has stopped trials (the spectrum at epoch 0, or the median rule itself earlier on), the
completed trials are the survivors, mostly the better ones, and their median cuts into the
study's better half. ``StudyMedianPruner`` compares with the study's median instead, counting
every trial that was stopped on the worse side.
"""

from __future__ import annotations

import optuna
from optuna.pruners import BasePruner, PercentilePruner
from optuna.trial import FrozenTrial, TrialState


def study_percentile(percentile: float, n_completed: int, n_stopped: int) -> float:
    """The percentile of the completed trials at which the ``percentile`` of all finished
    trials lies, when every stopped trial ranks worse than every completed one."""
    if n_completed == 0:
        return percentile
    return min(100.0, percentile * (n_completed + n_stopped) / n_completed)


class StudyMedianPruner(BasePruner):
    """Optuna's percentile rule (median by default) against all finished trials.

    A trial is pruned when its best value so far is worse than the ``percentile`` of the
    completed trials' values at this step, the percentile raised so that it stands where the
    study's would if the stopped (pruned or diverged) trials had ended worse than every
    completed one. With nothing stopped it is Optuna's ``PercentilePruner``; once half the
    finished trials were stopped it prunes nothing.
    """

    def __init__(self, percentile: float = 50.0, n_startup_trials: int = 5,
                 n_warmup_steps: int = 0, interval_steps: int = 1, n_min_trials: int = 1):
        PercentilePruner(percentile, n_startup_trials, n_warmup_steps, interval_steps,
                         n_min_trials=n_min_trials)  # validates the arguments
        self.percentile = float(percentile)
        self._args = (n_startup_trials, n_warmup_steps, interval_steps)
        self._n_min_trials = n_min_trials

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        finished = study.get_trials(deepcopy=False,
                                    states=(TrialState.COMPLETE, TrialState.PRUNED))
        completed = sum(t.state == TrialState.COMPLETE for t in finished)
        at = study_percentile(self.percentile, completed, len(finished) - completed)
        return PercentilePruner(at, *self._args, n_min_trials=self._n_min_trials).prune(
            study, trial)
