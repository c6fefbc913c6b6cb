"""``aelle worker``: run trials for a coordinator.

Its settings are :class:`WorkerSettings` (``AELLE_*`` variables); a flag overrides its
variable. The process's torch threads are set here, before the trials start.
"""

from __future__ import annotations

import logging
import sys

import torch

from aelle.cli import positive
from tasks.plugins import import_task_module
from workers.client import CoordinatorClient
from workers.config import WorkerSettings
from workers.runtime import Outcome, Worker

# flag (argparse dest) -> setting
FLAGS = {"url": "url", "token": "worker_token", "name": "worker_name",
         "concurrency": "concurrency", "patience": "patience", "on_stop": "on_stop"}


def add_worker_parser(sub) -> None:
    p = sub.add_parser("worker", help="lease and run trials for a coordinator",
                       description="Lease trials from a coordinator, train them (CUDA when "
                       "present), report every epoch, stop when told to prune. SIGTERM: take "
                       "no more work, hand running trials back (or let them finish: --on-stop "
                       "finish). Also read: AELLE_POLL_INTERVAL, AELLE_REQUEST_TIMEOUT, "
                       "AELLE_TORCH_THREADS.")
    p.add_argument("--url", help="the coordinator (default $AELLE_URL or http://127.0.0.1:8000)")
    p.add_argument("--token", help="the worker token (default $AELLE_WORKER_TOKEN)")
    p.add_argument("--name", help="the worker's name in its leases (default $AELLE_WORKER_NAME "
                   "or host-pid)")
    p.add_argument("--concurrency", type=positive(int),
                   help="trials at once (default $AELLE_CONCURRENCY or 1)")
    p.add_argument("--burst", action="store_true", help="return when there is no work")
    p.add_argument("--patience", type=float,
                   help="seconds to keep retrying an unreachable coordinator (default "
                   "$AELLE_PATIENCE or 300)")
    p.add_argument("--task-module", action="append", default=[], metavar="PKG.MODULE",
                   help="import this module and offer its tasks too (repeatable); installed "
                   "packages' tasks (entry points aelle.tasks) are offered without it")
    p.add_argument("--on-stop", choices=("hand-back", "finish"),
                   help="on SIGTERM, hand the running trials back at their next epoch to be run "
                   "again, or let them finish (default $AELLE_ON_STOP or hand-back)")
    p.set_defaults(func=run_worker)


def settings_from(args) -> WorkerSettings:
    """The environment's settings, with the flags given on top."""
    given = {setting: getattr(args, flag) for flag, setting in FLAGS.items()}
    return WorkerSettings(**{k: v for k, v in given.items() if v is not None})


def torch_threads(settings: WorkerSettings) -> int:
    """The setting, or on CPU the cores shared among the concurrent trials."""
    if settings.torch_threads is not None:
        return settings.torch_threads
    if settings.concurrency > 1 and not torch.cuda.is_available():
        return max(1, torch.get_num_threads() // settings.concurrency)
    return torch.get_num_threads()


def run_worker(args) -> int:
    settings = settings_from(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for module in args.task_module:
        import_task_module(module)  # a PluginError is bad input: exit 2, naming it
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    torch.set_num_threads(torch_threads(settings))
    client = CoordinatorClient.from_settings(settings)
    worker = Worker(client, name=settings.worker_name, concurrency=settings.concurrency,
                    burst=args.burst, poll=settings.poll_interval, on_stop=settings.on_stop)
    worker.install_signal_handlers()
    logging.getLogger("aelle.worker").info(
        "%s: offers %s", settings.worker_name,
        ", ".join(f"{t} (version {v})" for t, v in worker.versions.items()) or "no task")
    try:
        counts = worker.run()
    finally:
        client.close()
    name = settings.worker_name
    print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          if counts else f"{name}: no trials", file=sys.stderr)
    if worker.fatal is not None:
        print(f"aelle worker: {worker.fatal}", file=sys.stderr)
        return 1
    return 1 if counts[Outcome.UNREACHABLE] else 0
