"""The pruners' spectrum store on the coordinator: the reports table, one row per epoch.

The coordinator hands a pruner the spectrum being reported itself (it is stored once, with the
decision); this store serves the spectra already stored: a refit's training data."""

from __future__ import annotations

from sqlalchemy import select

from aelle.pruners import SpectrumStore
from service.db import Database, ReportRow, unpack_spectrum
from service.optuna_compat import trial_id


class ReportSpectrumStore(SpectrumStore):
    def __init__(self, db: Database):
        self.db = db

    def spectrum(self, study, trial, step):
        with self.db.session() as s:
            row = s.get(ReportRow, (trial_id(trial), step))
            return None if row is None else unpack_spectrum(row.spectrum)

    def spectra(self, study, trials):
        by_id = {trial_id(t): t.number for t in trials}
        out: dict[int, dict] = {}
        if not by_id:
            return out
        with self.db.session() as s:
            rows = s.execute(select(ReportRow.trial_id, ReportRow.step, ReportRow.spectrum)
                             .where(ReportRow.trial_id.in_(list(by_id)),
                                    ReportRow.spectrum.is_not(None))).all()
        for tid, step, blob in rows:
            out.setdefault(by_id[tid], {})[step] = unpack_spectrum(blob)
        return out
