"""Architectures registered by name, so that tasks, workers and tests can enumerate them."""

from __future__ import annotations

from aelle.cells.base import Cell

_REGISTRY: dict[str, type[Cell]] = {}


def register(name: str):
    """Class decorator: make a cell class available as ``get(name)``."""

    def deco(cls: type[Cell]) -> type[Cell]:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get(name: str) -> type[Cell]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    return sorted(_REGISTRY)
