"""A task whose training loop is the user's own: ``fit`` trains as it likes and calls
``report(value, model)`` before training (when ``settings.report_initial``) and after every
epoch; each report is one epoch of :func:`tasks.run_trial`, with the spectrum of the model's
recurrent core taken on the task's ``probe``. A pruned or diverged trial raises
:class:`StopTraining` out of ``report`` (let it through: it is not an Exception).

    class MyLoop(LoopTask):
        name = "my_loop"
        def search_space(self): return {"hidden": IntDistribution(8, 64)}
        def state_size(self, params, settings): return params["hidden"]
        def probe(self, params, settings, device): return validation_inputs[:8].to(device)
        def fit(self, params, settings, seed, device, report):
            model = MyNet(params["hidden"]).to(device)
            report(evaluate(model), model)
            for _ in range(settings.epochs):
                loss = train_one_epoch(model)
                report(evaluate(model), model, loss)

The loop runs in a thread of its own, paused inside ``report`` while the trial's driver takes
the spectrum and asks whether to go on.
"""

from __future__ import annotations

import queue
import threading
from abc import abstractmethod
from typing import Any

import torch
from torch import Tensor, nn

from aelle.cells.base import Cell
from tasks.base import Settings, SpectrumProbe, Task, TrialRun
from tasks.network import analysed_cell, find_core


class StopTraining(BaseException):
    """Raised from ``report``: the trial ends here (pruned or diverged)."""


class LoopTask(Task):
    """A task from ``fit`` and ``probe``; see the module's docstring."""

    @abstractmethod
    def fit(self, params: dict[str, Any], settings: Settings, seed: int, device: torch.device,
            report) -> None:
        """Train; call ``report(value, model, train_loss=None)`` as the module says."""

    @abstractmethod
    def probe(self, params: dict[str, Any], settings: Settings,
              device: torch.device) -> SpectrumProbe | Tensor:
        """The validation inputs (B, W + T, I) that drive the spectrum (a tensor: W is
        ``settings.spectrum_warmup``)."""

    def core(self, model: nn.Module) -> nn.Module:
        """The reported model's recurrent core (as :meth:`NetworkTask.core` finds it)."""
        return find_core(model, type(self).__name__)

    def build(self, params, settings, seed, device) -> LoopRun:
        return LoopRun(self, params, settings, seed, device)


class LoopRun(TrialRun):
    def __init__(self, task: LoopTask, params, settings: Settings, seed: int, device):
        self.task, self.params, self.settings = task, params, settings
        self.seed, self.device = seed, device
        self._reports: queue.Queue = queue.Queue(maxsize=1)
        self._answers: queue.Queue = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._fit, name=f"{task.name}-fit", daemon=True)
        self._current: tuple[float, nn.Module, float | None] | None = None
        self._fresh = False
        self._count = 0
        self._probe: SpectrumProbe | None = None
        self._closed = False

    # ---- the user's thread
    def _fit(self) -> None:
        try:
            self.task.fit(self.params, self.settings, self.seed, self.device, self._report)
        except StopTraining:
            return
        except BaseException as e:
            self._reports.put(("error", e))
            return
        self._reports.put(("end", None))

    def _report(self, value: float, model: nn.Module, train_loss: float | None = None) -> bool:
        if not isinstance(model, nn.Module):
            raise TypeError(f"report(value, model): model must be a torch.nn.Module, got "
                            f"{type(model).__name__}")
        if self._closed:  # a report past the trial's last epoch
            raise StopTraining
        self._reports.put(("report", (float(value), model, train_loss)))
        if self._answers.get() == "stop":
            raise StopTraining
        return True

    # ---- the driver's side
    def _next(self) -> None:
        if self._thread.is_alive() or self._count:
            self._answers.put("go")
        else:
            self._thread.start()
        kind, item = self._reports.get()
        if kind == "error":
            raise item
        if kind == "end":
            raise RuntimeError(f"{self.task.name}: fit returned after {self._count} reports; "
                               "report before training (report_initial) and after every "
                               f"one of the {self.settings.epochs} epochs")
        self._current, self._fresh = item, True
        self._count += 1

    def train_epoch(self) -> float:
        self._next()
        value, _, train_loss = self._current
        return value if train_loss is None else float(train_loss)

    def validate(self) -> float:
        if not self._fresh:
            self._next()
        self._fresh = False
        return self._current[0]

    def lyapunov_cell(self, state: str, dtype: torch.dtype | None = None) -> Cell:
        return analysed_cell(self.task, self._current[1], state, dtype)

    def spectrum_probe(self) -> SpectrumProbe:
        if self._probe is None:
            got = self.task.probe(self.params, self.settings, self.device)
            self._probe = got if isinstance(got, SpectrumProbe) else \
                SpectrumProbe(got, self.settings.spectrum_warmup)
        return self._probe

    def close(self, finished: bool) -> None:
        """Let the loop return after its last report, or stop it inside ``report``."""
        self._closed = True
        if self._thread.is_alive():
            self._answers.put("go" if finished else "stop")
            self._thread.join()
