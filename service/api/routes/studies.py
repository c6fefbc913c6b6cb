"""Studies and their trials (user token)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from service.api.deps import CoordinatorDep, UserAuth
from service.api.schemas import (
    ModelStatus,
    StudiesPublic,
    StudyCreate,
    StudyPublic,
    TrialDetail,
    TrialsPublic,
    TrialState,
)

router = APIRouter(prefix="/studies", tags=["studies"], dependencies=UserAuth)
MAX_PAGE = 10_000  # the most items one page holds

@router.post("", response_model=StudyPublic, status_code=status.HTTP_201_CREATED)
def create_study(spec: StudyCreate, coordinator: CoordinatorDep):
    """Create a study: task, search space (default: the task's), direction, sampler, pruner,
    budget, epochs per trial."""
    return coordinator.create_study(spec)


Limit = Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="at most this many "
                                    "(default: all)")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="skip this many first")]


@router.get("", response_model=StudiesPublic)
def list_studies(coordinator: CoordinatorDep, limit: Limit = None, offset: Offset = 0):
    """The studies, oldest first, with their counts: ``limit`` of them from ``offset``;
    ``count`` is all of them."""
    data, count = coordinator.list_studies(limit=limit, offset=offset)
    return {"data": data, "count": count, "offset": offset, "limit": limit}


@router.get("/{name}", response_model=StudyPublic)
def get_study(name: str, coordinator: CoordinatorDep):
    """One study: counts by state, budget used, the best trial."""
    return coordinator.summary(name)


@router.get("/{name}/spec", response_model=StudyCreate)
def get_spec(name: str, coordinator: CoordinatorDep):
    """The specification the study was created with."""
    return coordinator.spec(name)


@router.post("/{name}/stop", response_model=StudyPublic)
def stop_study(name: str, coordinator: CoordinatorDep):
    """Lease no more trials of this study; running trials finish."""
    return coordinator.stop_study(name)


@router.get("/{name}/trials", response_model=TrialsPublic)
def list_trials(name: str, coordinator: CoordinatorDep, state: TrialState | None = None,
                top: int | None = Query(None, ge=1, le=100_000),
                order: Literal["value", "number"] = "value", limit: Limit = None,
                offset: Offset = 0):
    """Trials ranked by value (best first; trials without a value last), optionally filtered
    by state and cut to the top k; ``limit`` of them from ``offset``, ``count`` all of
    them."""
    data, count = coordinator.trials(name, state=state, top=top, order=order, limit=limit,
                                     offset=offset)
    return {"data": data, "count": count, "offset": offset, "limit": limit}


@router.get("/{name}/trials/{number}", response_model=TrialDetail)
def get_trial(name: str, number: Annotated[int, Path(ge=0, le=2**31 - 1)],
              coordinator: CoordinatorDep):
    """One trial with its value, spectrum and decision at every epoch."""
    return coordinator.trial(name, number)


@router.get("/{name}/model", response_model=ModelStatus)
def model_status(name: str, coordinator: CoordinatorDep):
    """The study's AeLLE model: the version in use, the latest persisted one and its metrics."""
    return coordinator.model_status(name)


@router.get("/{name}/model/bytes", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def model_bytes(name: str, coordinator: CoordinatorDep):
    """The latest AeLLE model as bytes (``aelle.AeLLE.from_bytes`` reads it)."""
    return Response(coordinator.model_bytes(name), media_type="application/octet-stream")
