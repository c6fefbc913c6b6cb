"""The coordinator's domain errors; the web layer maps each to one status code."""

from service.db import StoreError


class NotFound(LookupError):
    """404: no such study, trial, lease or model."""


class Conflict(RuntimeError):
    """409: the request contradicts the stored state (a finished trial, a stale lease)."""


class Invalid(ValueError):
    """422: the request itself is wrong; the message names the field."""


class Quarantined(Conflict):
    """409: the study is quarantined (its stored spec or Optuna study proved broken); the
    message says why. Its summary stays readable."""


__all__ = ["Conflict", "Invalid", "NotFound", "Quarantined", "StoreError"]
