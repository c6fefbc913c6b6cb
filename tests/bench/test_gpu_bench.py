"""bench.gpu runs on the CPU at quick sizes, within its time limit, and writes its report."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_gpu_benchmark_runs_quick_on_the_cpu(tmp_path):
    p = subprocess.run([sys.executable, "-m", "bench.gpu", "--device", "cpu", "--quick",
                        "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["device"] == "cpu" and result["quick"] and not result["cut_short"]
    measured = [r for r in result["spectra"] if "spectra_per_s" in r]
    assert {r["device"] for r in measured} == {"device", "cpu"}
    assert {r["arch"] for r in measured} == {"gru", "lstm"}
    assert set(result["speedup"]) <= {"gru", "lstm"} and result["speedup"]
    assert {r["task"] for r in result["tasks"] if r.get("state") == "complete"} == {
        "smnist", "charrnn", "signal"}
    assert [r["concurrent"] for r in result["concurrency"]] == [1, 2]
    assert result["population"]["networks"] >= 1
    text = (tmp_path / "gpu.md").read_text()
    for section in ("## Spectra", "## Dissertation sizes", "## Trials on one device",
                    "## Population"):
        assert section in text
    assert f"results: {tmp_path / 'gpu.json'}" in p.stdout
