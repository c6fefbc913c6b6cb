"""Tasks registered by name: the zoo's, those of installed packages (the ``aelle.tasks``
entry-point group, found on first use) and those of modules imported by name
(:func:`tasks.plugins.import_task_module`)."""

from __future__ import annotations

import threading

from aelle.registry import Registry
from tasks.base import Task

_TASKS: Registry[Task] = Registry("task")
_discovery = threading.Lock()
_discovered = False


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make one instance of the task available as ``get(cls.name)``."""
    add(cls())
    return cls


def add(task: Task) -> None:
    """Make ``task`` available as ``get(task.name)``; ValueError if the name is taken."""
    _TASKS.add(task.name, task)


def get(name: str) -> Task:
    _discover()
    try:
        return _TASKS.get(name)
    except KeyError as e:
        from tasks.plugins import load_error

        broken = load_error(name)
        if broken is None:
            raise
        raise KeyError(f"{e.args[0]}; the installed plugin {name!r} failed to load: "
                       f"{broken}") from None


def names() -> list[str]:
    _discover()
    return _TASKS.names()


def registered(name: str) -> bool:
    return name in _TASKS.names()


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    with _discovery:
        if not _discovered:
            from tasks.plugins import load_entry_points

            _discovered = True
            load_entry_points()
