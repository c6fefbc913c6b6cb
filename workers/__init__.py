"""The worker: lease trials from a coordinator, train them under a heartbeat, report every
epoch, stop when told to prune, post the result. It talks to the coordinator over HTTP only
(:mod:`workers.client`) and imports ``tasks`` and ``aelle``, never the service or the
database."""

from workers.client import CoordinatorClient, LeaseLost, Rejected, Unreachable
from workers.config import WorkerSettings
from workers.runtime import Outcome, Worker

__all__ = ["CoordinatorClient", "LeaseLost", "Outcome", "Rejected", "Unreachable", "Worker",
           "WorkerSettings"]
