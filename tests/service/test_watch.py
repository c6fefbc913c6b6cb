"""``aelle watch``: the live table of a study in the terminal, against a real coordinator."""

import httpx
import pytest

from aelle.cli import main
from service.watch import shown
from tests.service.support import API, USER, lease, report, result, study

TOKEN = ["--token", "user-secret-for-tests"]


def test_watch_shows_progress_and_trials_and_ends_with_the_study(server, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # rich reads the terminal's width from it
    with httpx.Client(base_url=server) as c:
        assert c.post(f"{API}/studies", json=study(budget=2, epochs=2),
                      headers=USER).status_code == 201
        a = lease(c)
        report(c, a, 0, 2.5, [0.3] + [-0.2] * 7)
        assert main(["watch", "s", "--once", "--url", server, *TOKEN]) == 0
        out = capsys.readouterr().out
        assert "1/2 trials" in out and "1 running" in out
        assert "running" in out and "2.5" in out and "+0.300" in out and "continue" in out
        result(c, a, value=1.5)
        b = lease(c)
        result(c, b, state="diverged", value=None, reason="loss is nan")
    # the study is done: the live view draws it and returns at once
    assert main(["watch", "s", "--every", "0.1", "--url", server, *TOKEN]) == 0
    out = capsys.readouterr().out
    assert "2/2 trials" in out and "1 complete, 1 diverged" in out and "best 1.5" in out
    assert "loss is nan" in out and "saved 3 epochs" in out  # 3 reports a diverged trial skipped


def test_watch_names_what_is_wrong(server, capsys):
    assert main(["watch", "nope", "--once", "--url", server, *TOKEN]) == 2
    assert "404: no study named 'nope'" in capsys.readouterr().err
    assert main(["watch", "s", "--once", "--url", server, "--token", "wrong"]) == 2
    assert "401: a valid user token is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        main(["watch", "s", "--url", server, *TOKEN, "--every", "0"])
    assert bad.value.code == 2 and "must be positive, got 0" in capsys.readouterr().err


def test_the_running_trials_are_always_shown_then_the_latest():
    trials = [{"number": i, "state": "running" if i in (1, 3) else "complete"}
              for i in range(10)]
    assert [t["number"] for t in shown(trials, 4)] == [1, 3, 8, 9]
    assert len(shown(trials, 50)) == 10
