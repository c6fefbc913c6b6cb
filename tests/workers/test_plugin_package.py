"""The done-when test of task plugins: the example package, pip-installed in a fresh virtual
environment, runs a study through a real coordinator that does not have the task (its
environment is the test's) and two real worker processes that do; a stock worker gets none of
its trials; the trials come back ranked.

The fresh environment gets aelle (from a copy of this worktree) and the example by pip, with no
index; the dependencies (torch among them) are the test environment's, reached through a
``.pth`` line, so that nothing is downloaded or copied: the test measures the plugin, not an
install of torch.
"""

import json
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.service.test_processes import Coordinator, Process, wait_until

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"AELLE_USER_TOKEN": "user-secret-for-tests",
          "AELLE_WORKER_TOKEN": "worker-secret-for-tests"}


def sh(*argv, **kw) -> str:
    p = subprocess.run([str(a) for a in argv], text=True, capture_output=True, timeout=600,
                       **kw)
    assert p.returncode == 0, f"{argv}:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def fresh_venv(where: Path) -> Path:
    """A new virtual environment with aelle and the example installed by pip; its bin/."""
    sh(sys.executable, "-m", "venv", where)
    site = Path(sh(where / "bin" / "python", "-c",
                   "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # the setuptools venv bundles is older than the one aelle builds with (>= 68)
    sh(where / "bin" / "python", "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools")
    src = where.parent / "src"
    for part in ("aelle", "tasks", "workers", "service"):
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, src / part)
    shutil.copytree(ROOT / "examples" / "my_task", where.parent / "my_task",
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    pip = [where / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index",
           "--no-build-isolation"]
    sh(*pip, src)
    sh(*pip, where.parent / "my_task")
    return where / "bin"


@pytest.mark.slow
def test_a_plugin_package_runs_a_study_through_the_service(tmp_path):
    started = time.monotonic()
    venv = fresh_venv(tmp_path / "venv")
    installed = time.monotonic() - started
    assert "sines" in sh(venv / "python", "-c", "import tasks; print(tasks.names())")
    csv = tmp_path / "series.csv"
    sh(venv / "python", "-m", "my_task.series", csv, 600)

    env = {"PATH": f"{venv}:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1",
           "AELLE_DATABASE_URL": f"sqlite:///{tmp_path}/aelle.db", **TOKENS,
           "AELLE_HEARTBEAT_INTERVAL": "2", "AELLE_TORCH_THREADS": "1"}
    # the test's environment: no plugin installed (patient: on a loaded machine its imports
    # alone can take a minute)
    coordinator = Coordinator(env).start(timeout=300)
    try:
        env = coordinator.env
        spec = {"name": "sines-e2e", "task": "sines", "budget": 6, "epochs": 3,
                "search_space": {"hidden": {"type": "int", "low": 4, "high": 16},
                                 "lr": {"type": "float", "low": 3e-3, "high": 3e-2,
                                        "log": True}},
                "settings": {"csv_path": str(csv), "window": 12, "spectrum_sequences": 2,
                             "spectrum_steps": 16, "spectrum_warmup": 4, "device": "cpu"},
                "sampler": {"name": "random", "seed": 0},
                "pruner": {"name": "median", "settings": {"n_startup_trials": 3}}}
        study = tmp_path / "study.yaml"
        study.write_text(json.dumps(spec))  # JSON is YAML
        out = sh(venv / "aelle", "submit", study, env=env, cwd=tmp_path)
        assert "created study sines-e2e" in out

        # a stock worker (no plugin) has nothing to do: burst mode ends it at once
        stock = subprocess.run([sys.executable, "-m", "aelle.cli", "worker", "--burst",
                                "--name", "stock"], env=env, capture_output=True, text=True,
                               timeout=120)
        assert stock.returncode == 0 and "stock: no trials" in stock.stderr, stock.stderr
        assert coordinator.get("/studies/sines-e2e")["used"] == 0

        workers = [Process([venv / "aelle", "worker", "--burst", "--name", f"w{i}"], env)
                   for i in range(2)]
        wait_until(lambda: all(w.poll() is not None for w in workers), 540, "the workers")
        logs = [w.output() for w in workers]
        assert [w.returncode for w in workers] == [0, 0], "\n".join(logs)
        assert all("sines (version 1)" in log and "smnist (version 1)" in log
                   for log in logs), logs[0]

        ranked = json.loads(sh(venv / "aelle", "trials", "sines-e2e", "--json", env=env))
        summary = coordinator.get("/studies/sines-e2e")
        best = next(t for t in ranked if t["state"] == "complete")
        network = tmp_path / "best.pt"
        sh(venv / "aelle", "trials", "sines-e2e", "--download", str(best["number"]), "--out",
           str(network), env=env)
    finally:
        coordinator.stop()
    assert len(ranked) == 6 and summary["used"] == 6 and summary["task_version"] == "1"
    assert {t["state"] for t in ranked} <= {"complete", "pruned"}
    done = [t for t in ranked if t["state"] == "complete"]
    assert done and all(t["epochs"] == 4 and t["max_le"] is not None for t in done)
    assert [t["value"] for t in done] == sorted(t["value"] for t in done)
    assert summary["best"]["value"] == done[0]["value"]
    for log, name in zip(logs, ("w0", "w1"), strict=True):
        counts = log.strip().splitlines()[-1]  # "w0: complete 2, pruned 1"
        assert counts.startswith(f"{name}: ") and "no trials" not in counts, log
    # the best trial's network, downloaded and rebuilt where the plugin is installed,
    # evaluates to the loss it reported
    again = sh(venv / "python", "-c", "import sys, aelle; "
               "print(aelle.load_trial_run(sys.argv[1]).validate())", str(network), env=env)
    assert float(again.strip().splitlines()[-1]) == pytest.approx(done[0]["value"], rel=1e-6)
    print(f"\nfresh venv installed in {installed:.1f} s; the study ran in "
          f"{time.monotonic() - started - installed:.1f} s")
