"""One line that says which machine a benchmark ran on: each session may get another CPU, and
timings (and the share of work LAPACK or MKL gets done per core) differ between them."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe() -> str:
    """e.g. 'Intel(R) Xeon(R) Processor (AVX512), x86_64, 2 cores'."""
    return (f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), {platform.machine()}, "
            f"{os.cpu_count()} cores")
