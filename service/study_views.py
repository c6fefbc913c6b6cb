"""What the page at ``/ui`` plots, read from the same stores as the other queries: every
trial's learning curve, every trial in the AeLLE plane, the study's model versions."""

from __future__ import annotations

import threading

import numpy as np
from sqlalchemy import func, select

from aelle.model import AeLLE, SpectrumPCA
from service.api.schemas import (
    CurvePublic,
    ModelInfo,
    PlanePoint,
    PlanePublic,
)
from service.db import Database, ModelRow, ReportRow, unpack_spectrum
from service.model_store import ModelStore
from service.optuna_compat import trial_id
from service.studies import StudyCatalog, state_of

MODELS_CACHED = 8  # decoded AeLLE models kept per process, by version


class StudyViews:
    def __init__(self, db: Database, studies: StudyCatalog, models: ModelStore):
        self.db, self.studies, self.models = db, studies, models
        self._decoded: dict[str, AeLLE] = {}
        self._planes: dict[int, tuple] = {}  # study id -> (what it was placed from, basis, points)
        self._lock = threading.Lock()

    def curves(self, name: str, limit: int | None = None,
               offset: int = 0) -> tuple[list[CurvePublic], int]:
        """Each trial's value at every epoch, by trial number; ``limit`` of them from
        ``offset``, and how many trials there are."""
        trials = self._trials(name)
        page = trials[offset:None if limit is None else offset + limit]
        return [CurvePublic(number=t.number, state=state_of(t),
                            epochs=sorted(t.intermediate_values),
                            values=[t.intermediate_values[e]
                                    for e in sorted(t.intermediate_values)])
                for t in page], len(trials)

    def plane(self, name: str, limit: int | None = None, offset: int = 0) -> PlanePublic:
        """Every trial with a spectrum placed by its latest spectrum: in the plane of the
        study's latest AeLLE model (its first two principal components of the latent space),
        or, before the study has one, in the plane of the spectra's own first two principal
        components. Kept until the study moves (a report, a trial's end, a new model): an
        open page asks again and again."""
        row = self.studies.row(name)
        trials = self._trials(name)
        latest = self.models.latest(row.study_id)
        key = (None if latest is None else latest.version,
               tuple((t.number, t.state, len(t.intermediate_values)) for t in trials))
        with self._lock:
            kept = self._planes.get(row.study_id)
        if kept is None or kept[0] != key:
            kept = (key, *self._place(trials, latest))
            with self._lock:
                self._planes[row.study_id] = kept
        _, basis, points = kept
        return PlanePublic(basis=basis, data=points[offset:None if limit is None
                                                    else offset + limit],
                           count=len(points), offset=offset, limit=limit)

    def _place(self, trials, latest: ModelRow | None) -> tuple[str, list[PlanePoint]]:
        last = self._last_spectra([trial_id(t) for t in trials])
        placed = [t for t in trials if trial_id(t) in last]
        if not placed or (latest is None and len(placed) < 2):
            return "none", []
        spectra = [last[trial_id(t)][0] for t in placed]
        if latest is not None:
            basis, xy = f"aelle {latest.version}", self._model(latest).embed(spectra)
        else:
            basis, xy = "pca of the spectra", SpectrumPCA(spectra).transform(spectra)
        xy = np.column_stack([xy, np.zeros((len(xy), 2))])[:, :2]  # one component: y is 0
        return basis, [PlanePoint(number=t.number, state=state_of(t),
                                  value=t.value if t.value is not None else _last_value(t),
                                  epoch=last[trial_id(t)][1], decision=last[trial_id(t)][2],
                                  x=float(x), y=float(y))
                       for t, (x, y) in zip(placed, xy, strict=True)]

    def model_versions(self, name: str, limit: int | None = None,
                       offset: int = 0) -> tuple[list[ModelInfo], int]:
        """The study's persisted AeLLE models, oldest first (only the latest few are kept)."""
        sid = self.studies.row(name).study_id
        with self.db.session() as s:
            q = (select(ModelRow.version, ModelRow.trials, ModelRow.spectra, ModelRow.metrics,
                        ModelRow.created_at).where(ModelRow.study_id == sid)
                 .order_by(ModelRow.id).offset(offset))
            if limit is not None:
                q = q.limit(limit)
            rows = s.execute(q).all()
            count = s.scalar(select(func.count()).select_from(ModelRow)
                             .where(ModelRow.study_id == sid))
        return [ModelInfo(version=r.version, trials=r.trials, spectra=r.spectra,
                          metrics=r.metrics, created_at=r.created_at.isoformat())
                for r in rows], count

    def _trials(self, name: str):
        active = self.studies.active(self.studies.row(name).study_id)
        return sorted(active.study.get_trials(deepcopy=False), key=lambda t: t.number)

    def _last_spectra(self, ids: list[int]) -> dict[int, tuple[np.ndarray, int, str | None]]:
        """Each trial's latest reported spectrum, with its epoch and decision."""
        if not ids:
            return {}
        with self.db.session() as s:
            last = (select(ReportRow.trial_id, func.max(ReportRow.step).label("step"))
                    .where(ReportRow.trial_id.in_(ids), ReportRow.spectrum.is_not(None))
                    .group_by(ReportRow.trial_id).subquery())
            rows = s.execute(select(ReportRow.trial_id, ReportRow.step, ReportRow.spectrum,
                                    ReportRow.decision).join(
                last, (ReportRow.trial_id == last.c.trial_id) & (ReportRow.step == last.c.step)
            )).all()
        return {r.trial_id: (unpack_spectrum(r.spectrum), r.step, r.decision) for r in rows}

    def _model(self, row: ModelRow) -> AeLLE:
        with self._lock:
            model = self._decoded.get(row.version)
            if model is None:
                model = AeLLE.from_bytes(row.blob)
                if len(self._decoded) >= MODELS_CACHED:
                    self._decoded.pop(next(iter(self._decoded)))
                self._decoded[row.version] = model
            return model


def _last_value(t) -> float | None:
    if not t.intermediate_values:
        return None
    return t.intermediate_values[max(t.intermediate_values)]
