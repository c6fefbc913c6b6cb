"""What users read: trials ranked, one trial with every report, the study's AeLLE model."""

from __future__ import annotations

import datetime as dt

from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import func, select

from aelle.pruners import AeLLEPruner
from service.api.schemas import (
    ModelInfo,
    ModelStatus,
    ReportDetail,
    TrialDetail,
    TrialPublic,
)
from service.db import ArtifactRow, Database, ExplainRow, ReportRow, unpack_spectrum
from service.errors import NotFound
from service.model_store import ModelStore
from service.optuna_compat import trial_id
from service.studies import REASON, StudyCatalog, run_again, state_of


class Queries:
    def __init__(self, db: Database, studies: StudyCatalog, models: ModelStore):
        self.db, self.studies, self.models = db, studies, models

    def trials(self, name: str, state: str | None = None, top: int | None = None,
               order: str = "value", limit: int | None = None,
               offset: int = 0) -> tuple[list[TrialPublic], int]:
        """The study's trials ranked: best value first (the direction decides), trials without
        a value after, by number; ``limit`` of them from ``offset``, and how many were
        ranked."""
        active = self.studies.active(self.studies.row(name).study_id)
        trials = active.study.get_trials(deepcopy=False)
        if state is not None:
            trials = [t for t in trials if state_of(t) == state]
        sign = 1.0 if active.spec.direction == "minimize" else -1.0

        def key(t: FrozenTrial):
            if order == "number":
                return (0, t.number)
            v = t.value if t.value is not None else _last_value(t)
            return (v is None, sign * v if v is not None else 0.0, t.number)

        ranked = sorted(trials, key=key)[:top]
        page = ranked[offset:None if limit is None else offset + limit]
        last = self._last_reports([trial_id(t) for t in page])
        return [_trial(t, last.get(trial_id(t))) for t in page], len(ranked)

    def trial(self, name: str, number: int) -> TrialDetail:
        _, t = self.studies.trial(name, number)
        with self.db.session() as s:
            reports = s.scalars(select(ReportRow).where(ReportRow.trial_id == trial_id(t))
                                .order_by(ReportRow.step)).all()
            stored = s.get(ArtifactRow, trial_id(t)) is not None
            explained = s.scalar(select(ExplainRow.number)
                                 .where(ExplainRow.trial_id == trial_id(t))) is not None
        base = _trial(t, reports[-1] if reports else None)
        return TrialDetail(
            **base.model_dump(),
            reports=[ReportDetail(epoch=r.step, value=r.value, decision=r.decision,
                                  prediction=r.prediction, model=r.model, reason=r.reason,
                                  spectrum=None if r.spectrum is None
                                  else unpack_spectrum(r.spectrum).tolist())
                     for r in reports],
            user_attrs=dict(t.user_attrs),
            links=trial_links(name, number, stored, explained))

    def model_status(self, name: str) -> ModelStatus:
        row = self.studies.row(name)
        active = self.studies.active(row.study_id)
        latest = self.models.latest(row.study_id)
        p = active.spectrum_pruner
        return ModelStatus(
            pruner=active.spec.pruner.name,
            fitting=isinstance(p, AeLLEPruner) and p.fitting,
            in_use=None if p is None else p.model_version,
            models_kept=self.models.count(row.study_id),
            latest=None if latest is None else ModelInfo(
                version=latest.version, trials=latest.trials, spectra=latest.spectra,
                metrics=latest.metrics, created_at=latest.created_at.isoformat()))

    def model_bytes(self, name: str) -> bytes:
        latest = self.models.latest(self.studies.row(name).study_id)
        if latest is None:
            raise NotFound(f"study {name!r} has no AeLLE model yet")
        return latest.blob

    def _last_reports(self, ids: list[int]) -> dict[int, ReportRow]:
        if not ids:
            return {}
        with self.db.session() as s:
            last = (select(ReportRow.trial_id, func.max(ReportRow.step).label("step"))
                    .where(ReportRow.trial_id.in_(ids)).group_by(ReportRow.trial_id)
                    .subquery())
            rows = s.scalars(select(ReportRow).join(
                last, (ReportRow.trial_id == last.c.trial_id) & (ReportRow.step == last.c.step)
            )).all()
        return {r.trial_id: r for r in rows}


def _trial(t: FrozenTrial, last: ReportRow | None) -> TrialPublic:
    stopped = t.state in (TrialState.PRUNED, TrialState.FAIL)
    return TrialPublic(
        number=t.number, trial_id=trial_id(t), state=state_of(t), value=t.value,
        last_value=_last_value(t), params=t.params, epochs=len(t.intermediate_values),
        max_le=last.max_le if last else None, mean_le=last.mean_le if last else None,
        prediction=last.prediction if last else None,
        decision=last.decision if last else None,
        reason=t.user_attrs.get(REASON) if stopped else None,
        retry_of=run_again(t),
        started_at=_iso(t.datetime_start), finished_at=_iso(t.datetime_complete))


def _last_value(t: FrozenTrial) -> float | None:
    if not t.intermediate_values:
        return None
    return t.intermediate_values[max(t.intermediate_values)]


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def trial_links(name: str, number: int, stored: bool, explained: bool) -> dict[str, str]:
    """What else the coordinator holds for a trial, by label: its trained network, its explain
    report (the HTML page; without ``?format=html`` the JSON)."""
    base = f"/studies/{name}/trials/{number}"
    return {**({"trained network": f"{base}/artifact"} if stored else {}),
            **({"explain report": f"{base}/explain?format=html"} if explained else {})}
