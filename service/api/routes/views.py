"""What the page at ``/ui`` plots (user token): learning curves, the AeLLE plane, model
versions. Each answer is one page of ``limit`` items from ``offset``."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import CoordinatorDep, UserAuth
from service.api.routes.studies import Limit, Offset
from service.api.schemas import CurvesPublic, ModelsPublic, PlanePublic

router = APIRouter(prefix="/studies", tags=["studies"], dependencies=UserAuth)


@router.get("/{name}/curves", response_model=CurvesPublic)
def curves(name: str, coordinator: CoordinatorDep, limit: Limit = None, offset: Offset = 0):
    """Each trial's value at every epoch, by trial number."""
    data, count = coordinator.curves(name, limit=limit, offset=offset)
    return {"data": data, "count": count, "offset": offset, "limit": limit}


@router.get("/{name}/plane", response_model=PlanePublic)
def plane(name: str, coordinator: CoordinatorDep, limit: Limit = None, offset: Offset = 0):
    """Every trial with a spectrum, placed by its latest one in the plane of the study's
    latest AeLLE model (before the study has one: of the spectra's principal components)."""
    return coordinator.plane(name, limit=limit, offset=offset)


@router.get("/{name}/models", response_model=ModelsPublic)
def model_versions(name: str, coordinator: CoordinatorDep, limit: Limit = None,
                   offset: Offset = 0):
    """The study's AeLLE model versions kept, oldest first, with what each was fitted on."""
    data, count = coordinator.model_versions(name, limit=limit, offset=offset)
    return {"data": data, "count": count, "offset": offset, "limit": limit}
