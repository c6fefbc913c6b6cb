"""Trials' explanations (``aelle explain STUDY --upload``): the report's JSON, checked against
:class:`aelle.explain.schema.ReportDoc` and against the trial it names, and its HTML, stored
together in one row of ``aelle_explains`` (a new one replaces the old in one transaction)."""

from __future__ import annotations

import datetime as dt
import json

from pydantic import BaseModel, Field
from sqlalchemy import delete, insert, select

from aelle.explain.schema import ReportDoc
from service.db import Database, ExplainRow
from service.errors import Invalid, NotFound
from service.optuna_compat import trial_id
from service.studies import StudyCatalog


class ExplainUpload(BaseModel):
    """The body of ``PUT .../explain``: the report's JSON (``explain.json``) and, optionally,
    its HTML (``explain.html``)."""

    report: ReportDoc
    html: str | None = Field(None, description="the self-contained HTML report")


class ExplainPublic(BaseModel):
    study: str
    number: int
    trial_id: int
    title: str
    html: bool
    size: int = Field(description="bytes of the stored JSON and HTML")
    created_at: str


class Explains:
    def __init__(self, db: Database, studies: StudyCatalog):
        self.db, self.studies = db, studies

    def put(self, name: str, number: int, upload: ExplainUpload) -> ExplainPublic:
        active, trial = self.studies.trial(name, number)
        report = upload.report.model_dump(mode="json", exclude_unset=True)
        _check_trial(report["meta"], active.spec.task, trial.params, name, number)
        if upload.html is not None and not upload.html.lstrip()[:15].lower() \
                .startswith("<!doctype html"):
            raise Invalid("html must be an HTML document (<!doctype html> ...), as "
                          "aelle.explain.write_report writes it")
        values = {"study_id": active.id, "number": number, "trial_id": trial_id(trial),
                  "report": report, "html": upload.html,
                  "created_at": dt.datetime.now(dt.UTC)}
        with self.db.session() as s:
            s.execute(delete(ExplainRow).where(ExplainRow.study_id == active.id,
                                               ExplainRow.number == number))
            s.execute(insert(ExplainRow), [values])
        return _public(name, ExplainRow(**values))

    def get(self, name: str, number: int) -> ExplainRow:
        sid = self.studies.row(name).study_id
        with self.db.session() as s:
            row = s.get(ExplainRow, (sid, number))
        if row is None:
            raise NotFound(f"trial {number} of study {name!r} has no stored explanation "
                           f"(aelle explain {name} --trial {number} --upload stores one)")
        return row

    def html(self, name: str, number: int) -> str:
        row = self.get(name, number)
        if row.html is None:
            raise NotFound(f"the explanation of trial {number} of study {name!r} was stored "
                           "without its HTML")
        return row.html

    def drop_study(self, sid: int) -> int:
        """Delete every explanation of the study; how many."""
        with self.db.session() as s:
            gone = s.scalars(select(ExplainRow.number).where(ExplainRow.study_id == sid)).all()
            s.execute(delete(ExplainRow).where(ExplainRow.study_id == sid))
        return len(gone)


def _check_trial(meta: dict, task: str, params: dict, name: str, number: int) -> None:
    """The report must be of this trial's network: its task and parameters."""
    if meta.get("task") != task:
        raise Invalid(f"the report is of task {meta.get('task')!r}; trial {number} of study "
                      f"{name!r} is of task {task!r}")
    try:
        given = json.loads(meta["params"]) if isinstance(meta.get("params"), str) else None
    except json.JSONDecodeError:
        given = None
    if given != params:
        raise Invalid(f"the report's meta.params {meta.get('params')!r} are not trial "
                      f"{number}'s parameters {json.dumps(params)}")


def _public(name: str, row: ExplainRow) -> ExplainPublic:
    size = len(json.dumps(row.report)) + len((row.html or "").encode())
    return ExplainPublic(study=name, number=row.number, trial_id=row.trial_id,
                         title=row.report["title"], html=row.html is not None, size=size,
                         created_at=row.created_at.isoformat())
