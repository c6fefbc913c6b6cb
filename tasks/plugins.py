"""Tasks from outside the zoo: installed packages that declare an ``aelle.tasks`` entry point,
and modules named on the command line (``--task-module pkg.module``).

An entry point ``name = "pkg.module:Class"`` names a :class:`~tasks.base.Task` subclass (or an
instance) whose ``name`` is the entry point's name. A plugin that fails to load is logged and
skipped (the zoo and the other plugins stay usable); asking for its task then raises a
KeyError that says why it failed.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from importlib.metadata import entry_points

from tasks.base import Task
from tasks.registry import add, registered

GROUP = "aelle.tasks"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # what a study spec accepts
log = logging.getLogger("aelle.tasks")
_errors: dict[str, str] = {}


class PluginError(ValueError):
    """A task plugin that cannot be used; the message names it and what is wrong."""


def load_entry_points() -> list[str]:
    """Register the task of every ``aelle.tasks`` entry point; the names registered."""
    added = []
    for ep in entry_points(group=GROUP):
        try:
            task = _instance(ep.load(), f"entry point {ep.name} = {ep.value!r}")
            if task.name != ep.name:
                raise PluginError(f"entry point {ep.name} = {ep.value!r}: its task is named "
                                  f"{task.name!r}; the entry point must carry the task's name")
            if registered(task.name):
                raise PluginError(f"entry point {ep.name} = {ep.value!r}: a task named "
                                  f"{task.name!r} is already registered")
            add(task)
        except Exception as e:
            _errors[ep.name] = f"{type(e).__name__}: {e}".splitlines()[0]
            log.warning("task plugin %s (%s) was not loaded: %s", ep.name, ep.value,
                        _errors[ep.name])
            continue
        added.append(task.name)
    return added


def load_error(name: str) -> str | None:
    """Why the installed plugin of task ``name`` failed to load (None: it did not fail)."""
    return _errors.get(name)


def import_task_module(path: str) -> list[str]:
    """Import the module ``path`` (``pkg.module``) and register its tasks: those it registers
    itself (``@tasks.registry.register``) and every concrete Task subclass it defines that is
    not registered yet. PluginError if it cannot be imported or defines no task."""
    from tasks.registry import names

    before = set(names())
    try:
        module = importlib.import_module(path)
    except Exception as e:
        raise PluginError(f"task module {path!r} could not be imported: "
                          f"{type(e).__name__}: {e}".splitlines()[0]) from e
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if (issubclass(cls, Task) and cls.__module__ == module.__name__
                and not inspect.isabstract(cls) and not registered(getattr(cls, "name", ""))):
            add(_instance(cls, f"{path}.{cls.__name__}"))
    from tasks.registry import get

    found = sorted((set(names()) - before)
                   | {n for n in names() if type(get(n)).__module__ == module.__name__})
    if not found:
        raise PluginError(f"task module {path!r} defines no task (a subclass of "
                          "tasks.base.Task with a name)")
    return found


def _instance(obj, where: str) -> Task:
    task = obj() if isinstance(obj, type) and issubclass(obj, Task) else obj
    if not isinstance(task, Task):
        raise PluginError(f"{where}: {obj!r} is not a task (a subclass of tasks.base.Task)")
    name = getattr(task, "name", None)
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise PluginError(f"{where}: the task's name must be 1-128 letters, digits, '.', '_' "
                          f"or '-', starting with a letter or digit, got {name!r}")
    version = getattr(task, "version", None)
    if not isinstance(version, str) or not version or len(version) > 64:
        raise PluginError(f"{where}: the task's version must be a non-empty string of at most "
                          f"64 characters, got {version!r}")
    return task
