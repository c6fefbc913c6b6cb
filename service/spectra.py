"""The pruners' spectrum store on the coordinator: the reports table (one row per epoch)."""

from __future__ import annotations

import contextlib
import threading

from sqlalchemy import select

from aelle.store import SpectrumStore
from service.db import Database, ReportRow


class ReportSpectrumStore(SpectrumStore):
    """Spectra from the reports table; the report being answered is not stored yet (it is
    written once, with its decision), so it is handed over in ``pending``."""

    def __init__(self, db: Database):
        self.db = db
        self._local = threading.local()

    @contextlib.contextmanager
    def pending(self, trial_id: int, step: int, spectrum):
        self._local.pending = (trial_id, step, spectrum)
        try:
            yield
        finally:
            self._local.pending = None

    def spectrum(self, study, trial, step):
        pending = getattr(self._local, "pending", None)
        if pending is not None and pending[:2] == (trial._trial_id, step):
            return pending[2]
        with self.db.session() as s:
            row = s.get(ReportRow, (trial._trial_id, step))
            return None if row is None else row.spectrum_array()

    def spectra(self, study, trials):
        by_id = {t._trial_id: t.number for t in trials}
        out: dict[int, dict] = {}
        if not by_id:
            return out
        with self.db.session() as s:
            rows = s.execute(select(ReportRow.trial_id, ReportRow.step, ReportRow.spectrum)
                             .where(ReportRow.trial_id.in_(list(by_id)),
                                    ReportRow.spectrum.is_not(None))).all()
        for trial_id, step, blob in rows:
            out.setdefault(by_id[trial_id], {})[step] = ReportRow(spectrum=blob).spectrum_array()
        return out
