"""Architectures registered by name, so that tasks, workers and tests can enumerate them."""

from __future__ import annotations

from aelle.cells.base import Cell
from aelle.registry import Registry

_CELLS: Registry[type[Cell]] = Registry("architecture")


def register(name: str):
    """Class decorator: make a cell class available as ``get(name)``."""

    def deco(cls: type[Cell]) -> type[Cell]:
        _CELLS.add(name, cls)
        cls.name = name
        return cls

    return deco


def get(name: str) -> type[Cell]:
    return _CELLS.get(name)


def names() -> list[str]:
    return _CELLS.names()
