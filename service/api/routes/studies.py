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

@router.post("", response_model=StudyPublic, status_code=status.HTTP_201_CREATED)
def create_study(spec: StudyCreate, coordinator: CoordinatorDep):
    """Create a study: task, search space (default: the task's), direction, sampler, pruner,
    budget, epochs per trial."""
    return coordinator.create_study(spec)


@router.get("", response_model=StudiesPublic)
def list_studies(coordinator: CoordinatorDep):
    """Every study, oldest first, with its counts."""
    data = coordinator.list_studies()
    return {"data": data, "count": len(data)}


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
                order: Literal["value", "number"] = "value"):
    """Trials ranked by value (best first; trials without a value last), optionally filtered
    by state and cut to the top k."""
    data = coordinator.trials(name, state=state, top=top, order=order)
    return {"data": data, "count": len(data)}


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
