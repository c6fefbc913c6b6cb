"""``aelle demo`` (the README's main job) runs end to end, here cut to a few short trials."""

import subprocess
import sys


def test_demo_runs_a_study_and_writes_its_plots(tmp_path):
    out = tmp_path / "plots"
    p = subprocess.run([sys.executable, "-m", "aelle.cli", "demo", "--trials", "5", "--epochs",
                        "1", "--workers", "1", "--out", str(out)], capture_output=True,
                       text=True, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stdout.splitlines()
    assert any("the default pruner (joint: each configuration screened at epoch 0, then the "
               "best 3 trained)" in line for line in lines)
    assert any(line.split()[:3] == ["#", "state", "value"] for line in lines)
    # the five configurations screened, and the best three of them trained from their screen
    assert any(line.startswith("8 trials in ") and "(3 of them run a configuration again): "
               "3 complete, 5 pruned" in line for line in lines), p.stdout
    assert any(line == "epochs trained: 3 of the 5 a study without pruning would train "
               "(40 % saved)" for line in lines), p.stdout
    assert any(line.startswith("watch it at http://127.0.0.1:") and "/ui (user token " in line
               for line in lines)
    assert (out / "spectra.png").stat().st_size > 10_000


def test_demo_refuses_nonsense(tmp_path):
    p = subprocess.run([sys.executable, "-m", "aelle.cli", "demo", "--trials", "1"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 2 and "--trials must be >= 2" in p.stderr
