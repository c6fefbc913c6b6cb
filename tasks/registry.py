"""Tasks registered by name."""

from __future__ import annotations

from aelle.registry import Registry
from tasks.base import Task

_TASKS: Registry[Task] = Registry("task")


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make one instance of the task available as ``get(cls.name)``."""
    _TASKS.add(cls.name, cls())
    return cls


def get(name: str) -> Task:
    return _TASKS.get(name)


def names() -> list[str]:
    return _TASKS.names()
