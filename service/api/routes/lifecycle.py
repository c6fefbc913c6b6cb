"""A study's lifecycle (user token): delete, resume, raise the budget, queue failed trials
again. 404 for an unknown study, 409 where its state forbids it, 422 for bad input."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from service.api.deps import CoordinatorDep, UserAuth
from service.api.schemas import StudyPublic
from service.lifecycle import Requeued, StudyDeleted
from service.specs import MAX_BUDGET_EPOCHS, MAX_TRIALS, Strict

router = APIRouter(prefix="/studies", tags=["studies"], dependencies=UserAuth)


class BudgetUpdate(Strict):
    budget: int | None = Field(None, ge=1, le=MAX_TRIALS, description="the new trial budget, "
                               "above the current one")
    budget_epochs: int | None = Field(None, ge=1, le=MAX_BUDGET_EPOCHS, description="the new "
                                      "epoch budget, above the current one")


@router.delete("/{name}", response_model=StudyDeleted)
def delete_study(name: str, coordinator: CoordinatorDep):
    """Delete the study with its trials, reports, AeLLE models and stored networks (409
    while trials run, or while another study takes its model as pretrained)."""
    return coordinator.delete_study(name)


@router.post("/{name}/resume", response_model=StudyPublic)
def resume_study(name: str, coordinator: CoordinatorDep):
    """Lease the stopped study's trials again (409 if it is not stopped)."""
    return coordinator.resume_study(name)


@router.post("/{name}/budget", response_model=StudyPublic)
def raise_budget(name: str, body: BudgetUpdate, coordinator: CoordinatorDep):
    """Raise the study's trial budget, its epoch budget or both (422 unless each one given is
    above the current one)."""
    return coordinator.raise_budget(name, body.budget, body.budget_epochs)


@router.post("/{name}/requeue", response_model=Requeued)
def requeue_failed(name: str, coordinator: CoordinatorDep):
    """Queue the study's failed trials again with their parameters (their retries take no
    budget); the numbers queued."""
    return coordinator.requeue_failed(name)
