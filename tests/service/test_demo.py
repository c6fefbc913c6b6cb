"""``aelle demo`` (the README's main job) runs end to end, here cut to a few short trials."""

import subprocess
import sys


def test_demo_runs_a_study_and_writes_its_plots(tmp_path):
    out = tmp_path / "plots"
    p = subprocess.run([sys.executable, "-m", "aelle.cli", "demo", "--trials", "3", "--epochs",
                        "1", "--workers", "1", "--out", str(out)], capture_output=True,
                       text=True, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stdout.splitlines()
    assert any(line.split()[:3] == ["#", "state", "value"] for line in lines)
    assert any(line.startswith("3 trials in ") for line in lines)
    assert any(line.startswith("epochs trained: ") and "of the 3 a study without pruning"
               in line for line in lines)
    assert any(line.startswith("watch it at http://127.0.0.1:") and "/ui (user token " in line
               for line in lines)
    assert (out / "spectra.png").stat().st_size > 10_000


def test_demo_refuses_nonsense(tmp_path):
    p = subprocess.run([sys.executable, "-m", "aelle.cli", "demo", "--trials", "1"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 2 and "--trials must be >= 2" in p.stderr
