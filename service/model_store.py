"""The studies' AeLLE models: each new fit persisted, the last few kept, the latest read back
(a restarted coordinator decides with it at once)."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from aelle.pruners import AeLLEPruner, SpectrumPruner
from service.db import Database, ModelRow


class ModelStore:
    def __init__(self, db: Database, keep: int):
        self.db, self.keep = db, keep

    def persist(self, study_id: int, pruner: SpectrumPruner) -> None:
        """Store the model ``pruner`` decides with now (AeLLE pruners; the threshold rules
        have nothing to store), and drop all but the ``keep`` latest."""
        if not isinstance(pruner, AeLLEPruner) or pruner.model is None:
            return
        model = pruner.model
        h = model.history
        metrics = {"fit_seconds": round(h.seconds, 3),
                   "reconstruction": h.recon[-1] if h.recon else None,
                   "prediction_error": h.predict[-1] if h.predict else None,
                   "epochs": len(h.recon), "ramp_started": h.ramp_started}
        with self.db.session() as s:
            s.add(ModelRow(study_id=study_id, version=model.version, blob=model.to_bytes(),
                           trials=pruner.fitted_on, spectra=model.n_train, metrics=metrics))
            old = s.scalars(select(ModelRow.id).where(ModelRow.study_id == study_id)
                            .order_by(ModelRow.id.desc()).offset(self.keep)).all()
            if old:
                s.execute(delete(ModelRow).where(ModelRow.id.in_(old)))

    def latest(self, study_id: int) -> ModelRow | None:
        with self.db.session() as s:
            return s.scalar(select(ModelRow).where(ModelRow.study_id == study_id)
                            .order_by(ModelRow.id.desc()).limit(1))

    def count(self, study_id: int) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(ModelRow)
                            .where(ModelRow.study_id == study_id))
