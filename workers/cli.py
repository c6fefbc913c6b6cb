"""``aelle worker``: run trials for a coordinator."""

from __future__ import annotations

import logging
import os
import socket
import sys

from workers.client import CoordinatorClient
from workers.runtime import Worker


def add_worker_parser(sub) -> None:
    p = sub.add_parser("worker", help="lease and run trials for a coordinator",
                       description="Lease trials from a coordinator, train them (CUDA when "
                       "present), report every epoch, stop when told to prune. SIGTERM: take "
                       "no more work, hand running trials back.")
    p.add_argument("--url", default=os.environ.get("AELLE_URL", "http://127.0.0.1:8000"),
                   help="the coordinator (default $AELLE_URL or http://127.0.0.1:8000)")
    p.add_argument("--token", default=os.environ.get("AELLE_WORKER_TOKEN"),
                   help="the worker token (default $AELLE_WORKER_TOKEN)")
    p.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}")
    p.add_argument("--concurrency", type=int, default=1, help="trials at once")
    p.add_argument("--burst", action="store_true", help="return when there is no work")
    p.add_argument("--patience", type=float, default=300.0,
                   help="seconds to keep retrying an unreachable coordinator")
    p.set_defaults(func=run_worker)


def run_worker(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    if args.concurrency < 1:
        raise ValueError(f"--concurrency must be positive, got {args.concurrency}")
    client = CoordinatorClient(args.url, args.token or "", patience=args.patience)
    worker = Worker(client, name=args.name, concurrency=args.concurrency, burst=args.burst)
    worker.install_signal_handlers()
    try:
        counts = worker.run()
    finally:
        client.close()
    print(f"{args.name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          if counts else f"{args.name}: no trials", file=sys.stderr)
    return 1 if counts.get("unreachable") else 0
