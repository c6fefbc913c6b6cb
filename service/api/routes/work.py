"""What workers call (worker token): leases, reports, heartbeats, results.

These are the hot paths (every epoch of every trial), so each is an ``async`` route that runs
its coordinator call in the thread pool itself: one hop per request, where a plain ``def``
route also sends the response's validation through the pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from service.api.deps import CoordinatorDep, WorkerAuth
from service.api.schemas import (
    HeartbeatCreate,
    HeartbeatPublic,
    LeasePublic,
    LeaseRequest,
    NoWork,
    ReportCreate,
    ReportPublic,
    ResultCreate,
    ResultPublic,
)

router = APIRouter(tags=["work"], dependencies=WorkerAuth)


def _with_the_lease(operation_id: str, body: dict) -> dict:
    """An OpenAPI link from a lease to an operation on its trial (clients and stateful API
    fuzzers follow it)."""
    return {"operationId": operation_id,
            "parameters": {"trial_id": "$response.body#/trial_id"},
            "requestBody": {"lease": "$response.body#/token", **body}}


_LEASE_LINKS = {"responses": {"200": {"links": {
    "report": _with_the_lease("report", {"epoch": 0, "value": 1.0}),
    "heartbeat": _with_the_lease("heartbeat", {}),
    "result": _with_the_lease("result", {"state": "complete", "value": 1.0}),
}}}}
TrialId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the trial id of the lease")]


@router.post("/leases", response_model=LeasePublic | NoWork, operation_id="lease",
             openapi_extra=_LEASE_LINKS)
async def lease(body: LeaseRequest, coordinator: CoordinatorDep):
    """A trial to run (trial id, task, parameters, settings, lease), or "no work"."""
    got = await run_in_threadpool(coordinator.lease, body.worker, body.tasks,
                                   body.versions)
    return NoWork() if got is None else got


@router.post("/trials/{trial_id}/reports", response_model=ReportPublic, operation_id="report")
async def report(trial_id: TrialId, body: ReportCreate, coordinator: CoordinatorDep):
    """One epoch's validation value and spectrum; the answer says continue or prune."""
    return await run_in_threadpool(coordinator.report, trial_id, body.lease, body.epoch, body.value,
                                   body.spectrum)


@router.post("/trials/{trial_id}/heartbeat", response_model=HeartbeatPublic,
             operation_id="heartbeat")
async def heartbeat(trial_id: TrialId, body: HeartbeatCreate, coordinator: CoordinatorDep):
    """The worker is alive and still on this trial."""
    return await run_in_threadpool(coordinator.heartbeat, trial_id, body.lease)


@router.post("/trials/{trial_id}/result", response_model=ResultPublic, operation_id="result")
async def result(trial_id: TrialId, body: ResultCreate, coordinator: CoordinatorDep):
    """The trial's outcome: complete (final value), pruned, diverged or failed (reason)."""
    return await run_in_threadpool(coordinator.finish, trial_id, body.lease, body.state, body.value,
                                   body.reason, body.retry)
