"""The second half of a planned screen (the joint pruner with ``finalists``): once a study has
screened every configuration its trial budget allows and nothing of it runs or waits, its best
configurations are queued to run again, from the seed they were screened with, to the end.

Which: the K best screened configurations (the pruner's ``finalists``), those of them not run
again yet (after a raised trial budget, new configurations may rank among them); with an epoch
budget, the next best too while the epochs left pay for them (the screen took none). Each is a
waiting trial marked with the screened trial it runs again (``aelle:rerun_of``, its lease's
``retry_of``), so that it takes no trial budget, as a retry takes none."""

from __future__ import annotations

from aelle.pruners import DecidingPruner, JointPruner, rerun, reruns
from service.db import StudyRow


def planned_screen(pruner: DecidingPruner) -> JointPruner | None:
    """The joint pruner of a planned screen inside the study's pruner, if it is one."""
    inner = getattr(pruner, "wrapped", None)
    if isinstance(inner, JointPruner) and inner.finalists is not None:
        return inner
    return None


def queue_due(study, pruner: JointPruner, row: StudyRow, epochs_per_trial: int,
              epochs_used: int) -> list[int]:
    """Queue the finalists due (the caller holds the study's locks, and the screen is over):
    those of the K best screened configurations no trial runs again yet and, while an epoch
    budget's epochs left pay for more, the next best; the numbers of the screened trials
    queued."""
    ranked = [t for _, t in pruner.ranked(study)]
    queued = reruns(study)
    k = pruner.finalists
    chosen = [t for t in ranked[:k] if t.number not in queued]
    if row.budget_epochs is not None:
        room = (row.budget_epochs - epochs_used) // epochs_per_trial - len(chosen)
        chosen += [t for t in ranked[k:] if t.number not in queued][:max(room, 0)]
    return rerun(study, chosen)
