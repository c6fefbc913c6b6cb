"""Request and response bodies (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from service.specs import MAX_EXPONENTS, Strict, StudyCreate
from service.states import Outcome, TrialState

__all__ = ["MAX_EXPONENTS", "Outcome", "StudyCreate", "TrialState"]



class BestTrial(BaseModel):
    number: int
    value: float
    params: dict[str, Any]


class StudyPublic(BaseModel):
    name: str
    task: str
    task_version: str | None = Field(None, description="the version of the task its trials "
                                     "run with (None: no worker has asked for it yet)")
    direction: str
    pruner: str
    shadow: bool
    budget: int
    used: int = Field(description="trials started against the budget (a retry replaces the "
                      "trial it retries)")
    budget_epochs: int | None = Field(None, description="the epoch budget (None: trials only)")
    epochs_used: int = Field(0, description="epochs trained against the epoch budget, "
                             "retries included (the untrained network's report is not one)")
    spent: bool = Field(False, description="no new trial starts: the trial or the epoch "
                        "budget is used up (queued retries still run)")
    stopped: bool
    counts: dict[str, int] = Field(description="trials by state")
    best: BestTrial | None
    epochs_trained: int
    epochs_per_trial: int | None = Field(None, description="epochs a trial trains for (its "
                                         "reports: one more, epoch 0 counts)")
    epochs_saved: int = Field(0, description="epochs the pruned and diverged trials did not "
                              "train: the compute saved against no pruning")
    created_at: str
    quarantine: str | None = Field(None, description="why the study is no longer served "
                                   "(its stored spec or its Optuna study proved broken)")
    stop_reason: str | None = Field(None, description="why the coordinator stopped leasing "
                                    "it (a quota was reached)")


class StudiesPublic(BaseModel):
    data: list[StudyPublic]
    count: int = Field(description="all the studies, not only this page's")
    offset: int = 0
    limit: int | None = None


class LeaseRequest(Strict):
    worker: str = Field("worker", min_length=1, max_length=256)
    tasks: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        None, max_length=256, description="the tasks the worker "
                                    "can run: only studies of these are leased to it (none "
                                    "given: any)")
    versions: dict[Annotated[str, Field(min_length=1, max_length=128)],
                   Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=256, description="the version of each task the worker has: a study "
        "whose trials run another version of a task is not leased to it, and a study that has "
        "no version yet takes the first one asked with (a task without one here: any)")


class LeasePublic(BaseModel):
    study: str
    trial_id: int
    number: int
    task: str
    params: dict[str, Any]
    settings: dict[str, Any]
    token: str = Field(description="the lease: send it with every report, heartbeat and "
                       "result of this trial")
    heartbeat_interval: int
    retry_of: int | None
    task_version: str | None = Field(None, description="the version of the task the trial "
                                     "runs with (None: not known yet)")
    seed: int | None = Field(None, description="the seed to train with: the trial's number, or "
                             "for a planned screen's finalist the seed of the configuration "
                             "it runs again (None from an older coordinator: the number)")


class NoWork(BaseModel):
    trial_id: None = None
    detail: str = "no work"


class ReportCreate(Strict):
    lease: str = Field(min_length=1, max_length=64)
    epoch: int = Field(ge=0, le=100_000)
    value: float
    spectrum: list[float] | None = Field(None, max_length=MAX_EXPONENTS)


class ReportPublic(BaseModel):
    trial_id: int
    epoch: int
    decision: Literal["continue", "prune"]
    prediction: float | None
    model: str | None
    reason: str | None


class ResultCreate(Strict):
    lease: str = Field(min_length=1, max_length=64)
    state: Outcome
    value: float | None = None
    reason: str | None = Field(None, max_length=4096)
    retry: bool = Field(False, description="failed: queue the trial again with the same "
                        "parameters (the worker stopped; the trial itself did not fail)")


class ResultPublic(BaseModel):
    trial_id: int
    number: int
    state: TrialState
    value: float | None


class HeartbeatCreate(Strict):
    lease: str = Field(min_length=1, max_length=64)


class HeartbeatPublic(BaseModel):
    trial_id: int
    state: TrialState


class TrialPublic(BaseModel):
    number: int
    trial_id: int
    state: TrialState
    value: float | None
    last_value: float | None
    params: dict[str, Any]
    epochs: int = Field(description="epochs reported (epoch 0, the untrained network, counts)")
    max_le: float | None
    mean_le: float | None
    prediction: float | None = Field(description="the pruner's predicted final value at the "
                                     "last report (AeLLE's, the joint model's)")
    decision: str | None
    reason: str | None = Field(description="why the trial was pruned, diverged or failed")
    retry_of: int | None
    started_at: str | None = Field(description="when the trial was leased (ISO 8601)")
    finished_at: str | None = Field(description="when it completed, was pruned or failed")


class TrialsPublic(BaseModel):
    data: list[TrialPublic]
    count: int = Field(description="the trials asked for (state, top), not only this page's")
    offset: int = 0
    limit: int | None = None


class ReportDetail(BaseModel):
    epoch: int
    value: float
    decision: str | None
    prediction: float | None
    model: str | None
    reason: str | None
    spectrum: list[float] | None


class TrialDetail(TrialPublic):
    reports: list[ReportDetail]
    user_attrs: dict[str, Any]
    links: dict[str, str] = Field(default_factory=dict, description="what else is stored for "
                                  "this trial, by label: API paths under /api/v1 (user token)")


class ModelInfo(BaseModel):
    version: str
    trials: int
    spectra: int
    metrics: dict[str, Any]
    created_at: str


class ModelStatus(BaseModel):
    pruner: str
    fitting: bool
    in_use: str | None = Field(description="version of the model deciding now")
    models_kept: int
    latest: ModelInfo | None


class CurvePublic(BaseModel):
    number: int
    state: TrialState
    epochs: list[int]
    values: list[float] = Field(description="the value reported at each of ``epochs``")


class CurvesPublic(BaseModel):
    data: list[CurvePublic]
    count: int = Field(description="all the study's trials, not only this page's")
    offset: int = 0
    limit: int | None = None


class PlanePoint(BaseModel):
    number: int
    state: TrialState
    value: float | None = Field(description="final value, or the last reported one")
    epoch: int = Field(description="the epoch of the spectrum placed")
    decision: str | None = Field(description="the pruner's decision at that epoch")
    x: float
    y: float


class PlanePublic(BaseModel):
    basis: str = Field(description="'aelle <version>': the first two principal components of "
                       "the latest AeLLE model's latent space; 'pca of the spectra' before the "
                       "study has a model; 'none' when there is nothing to place")
    data: list[PlanePoint]
    count: int = Field(description="the trials placed, not only this page's")
    offset: int = 0
    limit: int | None = None


class ModelsPublic(BaseModel):
    data: list[ModelInfo]
    count: int = Field(description="the models kept (the latest few), not only this page's")
    offset: int = 0
    limit: int | None = None


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
