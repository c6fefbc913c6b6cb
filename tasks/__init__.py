"""The task zoo: sequential MNIST over eight architectures, CharRNN, FORCE signal reconstruction,
and two tasks with a known answer: system identification (sysid) and the 3-bit flip-flop.

    from tasks import get, run_trial
    outcome = run_trial("smnist", {"arch": "gru", "p_gru": 0.5}, {"epochs": 3}, seed=0)
"""

from tasks import charrnn, flipflop, signal, smnist, sysid  # noqa: F401  (registers)
from tasks.base import Settings, SpectrumProbe, Task, TrialRun
from tasks.data import DataError
from tasks.registry import get, names
from tasks.training import EpochReport, TrialOutcome, run_trial

__all__ = ["DataError", "EpochReport", "Settings", "SpectrumProbe", "Task", "TrialOutcome",
           "TrialRun", "get", "names", "run_trial"]
