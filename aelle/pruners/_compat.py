"""The pruners' one use of Optuna's warning machinery: PatientPruner is "experimental"."""

from __future__ import annotations

import contextlib
import warnings

import optuna


@contextlib.contextmanager
def quiet_experimental():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield
