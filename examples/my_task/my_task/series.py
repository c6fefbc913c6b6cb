"""The time series: a noisy sum of three sines, written once as CSV (``t,value``) and read
back, the way a user's own measurements would be."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

LENGTH = 4_000
DEFAULT = Path(tempfile.gettempdir()) / "aelle-my-task" / "sines-v1.csv"


def write(path: str | os.PathLike, length: int = LENGTH, seed: int = 0) -> Path:
    """Write the series to ``path`` (atomically: workers sharing a disk may write it at once)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    value = (np.sin(2 * np.pi * t / 50) + 0.5 * np.sin(2 * np.pi * t / 17 + 1.0)
             + 0.25 * np.sin(2 * np.pi * t / 7 + 2.0) + 0.1 * rng.standard_normal(length))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    np.savetxt(tmp, np.column_stack([t, value]), delimiter=",", header="t,value",
               comments="", fmt=["%d", "%.8f"])
    os.replace(tmp, path)
    return path


def read(path: str | os.PathLike) -> np.ndarray:
    """The ``value`` column of a CSV with a ``t,value`` header; ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    with path.open() as f:
        header = f.readline().strip()
    if header != "t,value":
        raise ValueError(f"{path}: the first line must be the header 't,value', got {header!r}")
    try:
        values = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1, ndmin=1)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if len(values) < 100 or not np.isfinite(values).all():
        raise ValueError(f"{path}: needs at least 100 finite values, got {len(values)}")
    return values


if __name__ == "__main__":  # python -m my_task.series [PATH [LENGTH]]
    import sys

    args = sys.argv[1:]
    print(write(args[0] if args else DEFAULT, int(args[1]) if len(args) > 1 else LENGTH))
