"""The task zoo: sequential MNIST over eight architectures, CharRNN, FORCE signal reconstruction,
and two tasks with a known answer: system identification (sysid) and the 3-bit flip-flop; and
the tasks of installed plugins (:mod:`tasks.plugins`), most simply a :class:`NetworkTask` or a
:class:`LoopTask` (a training loop of your own).

    from tasks import get, run_trial
    outcome = run_trial("smnist", {"arch": "gru", "p_gru": 0.5}, {"epochs": 3}, seed=0)
"""

from tasks import charrnn, flipflop, signal, smnist, sysid  # noqa: F401  (registers)
from tasks.base import Settings, SpectrumProbe, Task, TrialRun
from tasks.data import DataError
from tasks.loop import LoopTask, StopTraining
from tasks.network import Data, NetworkSettings, NetworkTask
from tasks.registry import get, names, register
from tasks.training import EpochReport, TrialOutcome, run_trial

__all__ = ["Data", "DataError", "EpochReport", "LoopTask", "NetworkSettings", "NetworkTask",
           "Settings", "SpectrumProbe", "StopTraining", "Task", "TrialOutcome", "TrialRun", "get",
           "names", "register", "run_trial"]
