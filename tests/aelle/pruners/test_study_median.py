"""The learning-curve rule that counts stopped trials (real studies via ask/report/tell)."""

import optuna
import pytest
from optuna.trial import TrialState

from aelle.pruners import StudyMedianPruner
from aelle.pruners._study_median import study_percentile


def test_the_percentile_moves_up_by_the_share_of_stopped_trials():
    assert study_percentile(50, 10, 0) == 50
    assert study_percentile(50, 6, 4) == pytest.approx(50 * 10 / 6)
    assert study_percentile(50, 4, 6) == 100  # the completed are all in the better half
    assert study_percentile(50, 0, 3) == 50


def study_with(completed, stopped, pruner):
    """A study whose completed trials reported ``completed`` at step 1 and whose ``stopped``
    trials were pruned at step 0."""
    study = optuna.create_study(pruner=pruner)
    for v in completed:
        t = study.ask()
        t.report(v, 0)
        t.report(v, 1)
        study.tell(t, v)
    for _ in range(stopped):
        t = study.ask()
        t.report(9.0, 0)
        study.tell(t, state=TrialState.PRUNED)
    return study


def ask_at_step_1(study, value):
    t = study.ask()
    t.report(value, 0)
    t.report(value, 1)
    return t.should_prune()


def test_with_nothing_stopped_it_is_optunas_median_rule():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    for probe in (2.5, 3.5):
        ours = study_with(values, 0, StudyMedianPruner(n_startup_trials=1))
        theirs = study_with(values, 0, optuna.pruners.MedianPruner(n_startup_trials=1))
        assert ask_at_step_1(ours, probe) == ask_at_step_1(theirs, probe)
    assert ask_at_step_1(study_with(values, 0, StudyMedianPruner(n_startup_trials=1)), 3.5)


def test_stopped_trials_count_on_the_worse_side_of_the_cut():
    # 5 completed (1..5) and 5 stopped: the study's median is the worst completed trial, so a
    # trial at 4.5 is within the better half; Optuna's median (3) would prune it
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert ask_at_step_1(study_with(values, 5, optuna.pruners.MedianPruner(n_startup_trials=1)),
                         4.5)
    assert not ask_at_step_1(study_with(values, 5, StudyMedianPruner(n_startup_trials=1)), 4.5)
    # 8 completed, 2 stopped: the cut is the completed trials' 62.5th percentile
    values = [float(v) for v in range(1, 9)]
    study = study_with(values, 2, StudyMedianPruner(n_startup_trials=1))
    assert ask_at_step_1(study, 6.0) and not ask_at_step_1(study, 5.0)


def test_arguments_are_validated_as_optunas():
    with pytest.raises(ValueError):
        StudyMedianPruner(percentile=120)
    with pytest.raises(ValueError):
        StudyMedianPruner(n_warmup_steps=-1)
