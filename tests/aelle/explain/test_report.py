"""explain() runs every method and the report embeds every figure; non-LSTM cells skip the
single-unit responses with the reason."""

import base64
import json

import torch

from aelle.explain import Network, explain, write_report
from tests.aelle.conftest import random_cell


def _net(name):
    cell = random_cell(name, n_networks=1, input_size=2, hidden=4)
    g = torch.Generator().manual_seed(0)
    return Network(cell, torch.randn(2, 4, generator=g, dtype=torch.float64),
                   torch.zeros(2, dtype=torch.float64))


def test_lstm_report_has_every_figure_and_the_json(tmp_path):
    probe = torch.randn(4, 30, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    exp = explain(_net("lstm"), probe, 5, title="tiny", meta={"task": "none"}, n_starts=8,
                  epochs=[1, 2], spectra=[[0.0, -1.0], [-0.1, -1.1]], progress=False)
    assert set(exp.seconds) == {"responses", "linearise", "attractors", "koopman", "lyapunov"}
    html_path, json_path = write_report(exp, tmp_path / "out")
    page = html_path.read_text()
    images = page.split("src='data:image/png;base64,")[1:]
    assert len(images) == 5
    for img in images:
        assert base64.b64decode(img.split("'", 1)[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http" not in page  # self-contained: nothing fetched
    data = json.loads(json_path.read_text())
    assert data["title"] == "tiny" and data["responses"]["units"][0]["unit"] == 0
    assert len(data["linearisation"]["poles_re"]) == 8
    assert data["lyapunov"]["epochs"] == [1, 2]
    assert data["ablation"]["counts"] == [1]


def test_gru_report_says_why_responses_are_skipped(tmp_path):
    probe = torch.randn(3, 20, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    exp = explain(_net("gru"), probe, 2, n_starts=6, progress=False)
    assert exp.responses is None and "LSTM" in exp.skipped["responses"]
    html_path, _ = write_report(exp, tmp_path)
    assert html_path.read_text().count("data:image/png;base64,") == 4


def test_the_reports_json_is_what_the_schema_accepts_and_a_changed_one_is_refused(tmp_path):
    import pytest
    from pydantic import ValidationError

    from aelle.explain import report_json
    from aelle.explain.schema import ReportDoc

    probe = torch.randn(3, 20, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for cell in ("lstm", "gru"):
        exp = explain(_net(cell), probe, 2, n_starts=6, progress=False)
        doc = report_json(exp)
        _, json_path = write_report(exp, tmp_path / cell)
        assert json.loads(json_path.read_text()) == doc
        assert ReportDoc.model_validate(doc).model_dump(mode="json", exclude_unset=True) == doc
    bad = json.loads(json.dumps(doc))
    bad["koopman"]["eigenvalues_im"].append(0.0)
    with pytest.raises(ValidationError, match="eigenvalues_re and eigenvalues_im and "
                                              "memory_horizons must have the same length"):
        ReportDoc.model_validate(bad)
    bad = {**doc, "extra": 1}
    with pytest.raises(ValidationError, match="extra"):
        ReportDoc.model_validate(bad)
    bad = json.loads(json.dumps(doc))
    bad["attractors"]["points"][0]["kind"] = "wobbly"
    with pytest.raises(ValidationError, match="stable"):
        ReportDoc.model_validate(bad)
