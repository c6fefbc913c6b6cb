"""What a benchmark ran on: each run may get another CPU, and timings (and the share of work
LAPACK or MKL gets done per core) differ between them, as do a trial's floating-point results."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import numpy as np
import sklearn
import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what the platform module knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe() -> str:
    """One line for a report, e.g. 'Intel(R) Xeon(R) Processor (AVX512), x86_64, 2 cores'."""
    return (f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), {platform.machine()}, "
            f"{os.cpu_count()} cores")


def environment() -> dict:
    """What decides a trial's floating-point results: the CPU and the numerical libraries (MKL
    and torch pick kernels by the instruction set)."""
    return {"cpu": cpu_model(), "capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "numpy": np.__version__, "sklearn": sklearn.__version__,
            "python": platform.python_version()}
