"""Trained networks: a worker uploads a running trial's (worker token), users download a
trial's (user token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import CoordinatorDep, UserAuth, WorkerAuth
from service.artifacts import ArtifactPublic

UPLOAD_PATH = r"/trials/\d+/artifact"  # bodies here may reach artifact_max_bytes
TrialId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the trial id of the lease")]
Number = Annotated[int, Path(ge=0, le=2**31 - 1)]

uploads = APIRouter(tags=["work"], dependencies=WorkerAuth)
downloads = APIRouter(prefix="/studies", tags=["studies"], dependencies=UserAuth)


@uploads.put("/trials/{trial_id}/artifact", response_model=ArtifactPublic,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}})
async def upload(trial_id: TrialId, request: Request, coordinator: CoordinatorDep,
                 x_aelle_lease: Annotated[str, Header(min_length=1, max_length=64)],
                 x_aelle_sha256: Annotated[str | None, Header(pattern="^[0-9a-fA-F]{64}$")]
                 = None):
    """The running trial's trained network (``tasks.artifacts.pack``), before its result:
    the lease in ``X-AeLLE-Lease``, the body's SHA-256 in ``X-AeLLE-SHA256`` (checked). The
    same upload again answers the same; another one for the trial is refused (409)."""
    data = await request.body()
    return await run_in_threadpool(coordinator.upload_artifact, trial_id, x_aelle_lease, data,
                                   x_aelle_sha256)


@downloads.get("/{name}/trials/{number}/artifact", response_class=Response,
               responses={200: {"content": {"application/octet-stream": {}}}})
def download(name: str, number: Number, coordinator: CoordinatorDep):
    """The trial's trained network (``aelle.load_trial_model`` rebuilds it); 404 when the
    trial stored none or it was not among the study's best kept."""
    data, info = coordinator.artifact(name, number)
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{_safe(name)}-trial-{number}.pt"',
        "X-AeLLE-SHA256": info.sha256})


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
