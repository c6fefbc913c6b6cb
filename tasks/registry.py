"""Tasks registered by name."""

from __future__ import annotations

from tasks.base import Task

_TASKS: dict[str, Task] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make one instance of the task available as ``get(cls.name)``."""
    if cls.name in _TASKS:
        raise ValueError(f"task {cls.name!r} is already registered")
    _TASKS[cls.name] = cls()
    return cls


def get(name: str) -> Task:
    try:
        return _TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    return sorted(_TASKS)
