"""Trials' explanations (user token): ``aelle explain STUDY --upload`` stores one, users read
its JSON or its HTML."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from service.api.deps import CoordinatorDep, UserAuth
from service.api.routes.artifacts import Number
from service.explains import ExplainPublic, ExplainUpload

UPLOAD_PATH = r"/studies/[^/]+/trials/\d+/explain"  # bodies here may reach explain_max_bytes
# the report is inline CSS and data: images: a stored page runs no script, loads nothing
HTML_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

router = APIRouter(prefix="/studies", tags=["studies"], dependencies=UserAuth)


@router.put("/{name}/trials/{number}/explain", response_model=ExplainPublic)
async def put_explain(name: str, number: Number, upload: ExplainUpload,
                      coordinator: CoordinatorDep):
    """Store the trial's explanation: the report's JSON (``explain.json``, checked to be of
    this trial's task and parameters) and its HTML; it replaces one stored before."""
    return await run_in_threadpool(coordinator.put_explain, name, number, upload)


@router.get("/{name}/trials/{number}/explain",
            responses={200: {"content": {"application/json": {}, "text/html": {}}}})
def get_explain(name: str, number: Number, coordinator: CoordinatorDep,
                format: Annotated[Literal["json", "html"], Query()] = "json"):
    """The trial's stored explanation: the report's JSON, or with ``format=html`` its
    self-contained HTML page; 404 when none is stored."""
    if format == "html":
        return HTMLResponse(coordinator.explain_html(name, number), headers={
            "Content-Security-Policy": HTML_POLICY, "X-Content-Type-Options": "nosniff"})
    row = coordinator.explain(name, number)
    return JSONResponse(row.report, headers={"X-AeLLE-Explained-At": row.created_at.isoformat()})
