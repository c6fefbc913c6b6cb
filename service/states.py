"""The vocabulary of trial states the API speaks, in a module light enough for any client."""

from enum import StrEnum


class TrialState(StrEnum):
    """A trial's state; "diverged" is a network whose loss or state went non-finite."""

    RUNNING = "running"
    WAITING = "waiting"
    COMPLETE = "complete"
    PRUNED = "pruned"
    DIVERGED = "diverged"
    FAILED = "failed"


class Outcome(StrEnum):
    """What a worker reports at the end of a trial."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    DIVERGED = "diverged"
    FAILED = "failed"
