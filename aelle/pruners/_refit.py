"""When and where a spectrum pruner's scorer is refitted: every ``every`` completed trials, in
the calling thread or in a background one (so that a report never waits for a fit)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

_log = logging.getLogger("aelle.pruners")

S = TypeVar("S")


def completed_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


class Refitter(Generic[S]):
    """Holds the current scorer and refits it.

    fit: (study, completed trials) -> a scorer, or None when there is too little to fit on
    (the previous scorer stays); a ValueError or RuntimeError keeps the previous scorer too,
    with a warning. on_fit: called after each successful fit.
    """

    def __init__(self, fit: Callable[[optuna.Study, list[FrozenTrial]], S | None], *,
                 every: int, background: bool, on_fit: Callable[[], None]):
        self._fit, self._every, self._background = fit, every, background
        self._on_fit = on_fit
        self._held = False
        self._scorer: S | None = None
        self._fitted_on = -1
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def scorer(self) -> S | None:
        return self._scorer

    @property
    def fitted_on(self) -> int:
        """Completed trials the current scorer was fitted on (0: given, -1: none yet)."""
        return self._fitted_on

    def install(self, scorer: S, *, hold: bool = False) -> None:
        """Decide with ``scorer`` (a carried model, a fixed rule): until a refit replaces it,
        or for good with ``hold``."""
        with self._lock:
            self._scorer, self._fitted_on, self._held = scorer, 0, hold

    def due(self, n_completed: int) -> bool:
        if self._held:
            return False
        return self._scorer is None or n_completed - self._fitted_on >= self._every

    def refresh(self, study: optuna.Study, completed: list[FrozenTrial]) -> None:
        """Refit if due: in this thread, or in the background thread (one at a time)."""
        if not self.due(len(completed)):
            return
        if not self._background:
            self.refit(study, completed)
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._refit_until_current,
                                            args=(study, list(completed)),
                                            name="aelle-refit", daemon=True)
            self._thread.start()

    def _refit_until_current(self, study: optuna.Study, completed: list[FrozenTrial]) -> None:
        """Refit; then again while trials completed during the fit make another one due (a
        completion that arrives while a fit runs starts none itself)."""
        while True:
            self.refit(study, completed)
            latest = completed_trials(study)
            if len(latest) <= len(completed) or not self.due(len(latest)):
                return
            completed = latest

    def refit(self, study: optuna.Study, completed: list[FrozenTrial]) -> None:
        """Fit now, in this thread."""
        try:
            scorer = self._fit(study, completed)
        except (ValueError, RuntimeError) as e:
            _log.warning("spectrum pruner: refit on %d trials failed: %s", len(completed), e)
            return
        if scorer is None:
            return
        with self._lock:
            self._scorer, self._fitted_on = scorer, len(completed)
        try:
            self._on_fit()
        except Exception as e:  # persisting the model must not lose the fit itself
            _log.warning("spectrum pruner: on_fit failed: %r", e)

    @property
    def fitting(self) -> bool:
        """A background refit is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background refit, if one runs, has finished."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
