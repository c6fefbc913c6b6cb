"""Threads that each run torch single-threaded, for work split over independent sequences.

The QR iteration is a chain of small LAPACK calls (one per sequence and step). MKL parallelises
one 256 x 256 factorisation poorly over two cores, while two threads that each factorise their
own sequences on one core use both fully: on this project's 2-core CPU the spectrum of an LSTM
with N = 256 takes about 0.55x the time (bench/spectrum_speed.py). Sequences are independent,
so the split changes no result beyond the rounding of a one-threaded BLAS.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

import torch

T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_size = 0


def _pool_of(size: int) -> ThreadPoolExecutor:
    """A pool of at least ``size`` threads whose torch and MKL use one thread each."""
    global _pool, _size
    with _lock:
        if _size < size:
            old = _pool
            saved = torch.get_num_threads()
            barrier = threading.Barrier(size)

            def start(_):
                # A thread's first parallel op copies the process default into its OpenMP
                # and MKL settings; do that now, then lower them for this thread only.
                torch.get_num_threads()
                torch.set_num_threads(1)
                barrier.wait()  # every thread must exist before the default is restored

            pool = ThreadPoolExecutor(size, thread_name_prefix="aelle-seq")
            list(pool.map(start, range(size)))
            torch.set_num_threads(saved)  # set_num_threads(1) lowered the default too
            _pool, _size = pool, size
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def split_count(batch: int, device: torch.device) -> int:
    """How many threads share ``batch`` independent sequences: one per torch thread on a CPU."""
    if device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), batch))


def run_split(fn: Callable[[slice], T], batch: int, parts: int) -> Sequence[T]:
    """``fn`` on ``parts`` contiguous slices of ``range(batch)``, each in its own thread.

    Every call runs to its end; then the first exception in slice order is raised.
    """
    if parts <= 1:
        return [fn(slice(0, batch))]
    bounds = [round(i * batch / parts) for i in range(parts + 1)]
    slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    futures = [_pool_of(parts).submit(fn, sl) for sl in slices]
    wait(futures)
    return [f.result() for f in futures]
