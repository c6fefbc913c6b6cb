"""aelle.client.Client and the user commands built on it, against a real coordinator."""

import json
import sys
import threading

import pytest

import aelle
from aelle.cli import main
from aelle.client import ApiError, Client, done
from tests.service.support import study
from workers.client import CoordinatorClient
from workers.runtime import Worker

TOKEN = "user-secret-for-tests"


def work(url):
    """A burst worker in a thread: it runs what there is and ends."""
    client = CoordinatorClient(url, "worker-secret-for-tests")
    t = threading.Thread(target=lambda: Worker(client, name="w", burst=True,
                                               progress=False).run())
    t.start()
    return t


def test_submit_watch_frame_and_the_best_network(server):
    c = Client(server, TOKEN)
    created = c.submit(study(budget=3, epochs=1))
    assert created["name"] == "s" and created["budget"] == 3
    worker = work(server)
    snapshots = list(c.watch("s", interval=0.1, timeout=300))
    worker.join()
    assert done(snapshots[-1]) and snapshots[-1]["counts"] == {"complete": 3}
    marks = [(s["counts"], s["used"], s["epochs_trained"]) for s in snapshots]
    assert len(set(map(str, marks))) == len(marks)  # a snapshot only when something changed
    updates = list(c.watch("s", trials=True, interval=0.1))
    assert sorted(t["number"] for t in updates) == [0, 1, 2]  # each trial once: all done

    frame = c.trials_frame("s")
    assert len(frame) == 3 and "params.arch" in frame.columns
    assert list(frame["value"]) == sorted(frame["value"])
    best = c.study("s")["best"]
    data = c.download_best("s")
    assert aelle.load_trial_run(data).validate() == pytest.approx(best["value"], rel=1e-6)
    assert isinstance(c.model("s"), aelle.load_trial_model(data).__class__)
    assert c.trial("s", best["number"])["reports"]

    deleted = c.delete("s")
    assert deleted == {"name": "s", "trials": 3, "artifacts": 3, "explains": 0}
    assert c.studies() == []
    c.close()


def test_the_client_says_what_is_wrong(server, monkeypatch):
    with pytest.raises(ValueError, match="user token"):
        Client(server, "")
    c = Client(server, TOKEN)
    with pytest.raises(ApiError) as e:
        c.study("nope")
    assert e.value.status == 404 and "nope" in e.value.detail
    c.submit(study(budget=2))
    with pytest.raises(ApiError) as e:
        c.resume("s")
    assert e.value.status == 409
    with pytest.raises(ApiError) as e:
        c.raise_budget("s", 1)
    assert e.value.status == 422
    with pytest.raises(ApiError, match="no completed trial"):
        c.download_best("s")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        c.trials_frame("s")
    with pytest.raises(ApiError) as e:
        Client("http://127.0.0.1:9", TOKEN).studies()
    assert e.value.status is None and "cannot reach" in e.value.detail
    with pytest.raises(ApiError) as e:
        Client(server, "wrong-token-wrong-token").studies()
    assert e.value.status == 401


def test_user_commands_download_and_change_a_study(server, tmp_path, capsys):
    opts = ["--url", server, "--token", TOKEN]
    c = Client(server, TOKEN)
    c.submit(study(budget=1, epochs=1))
    work(server).join()
    out = tmp_path / "net.pt"
    assert main(["trials", "s", "--download", "0", "--out", str(out), *opts]) == 0
    assert aelle.load_trial_model(out.read_bytes()) is not None
    assert main(["trials", "s", "--download", "7", *opts]) == 2
    assert "404" in capsys.readouterr().err
    assert main(["study", "budget", "s", "3", *opts]) == 0
    assert "budget 3" in capsys.readouterr().out
    assert main(["study", "budget", "s", *opts]) == 2  # no budget given
    assert main(["study", "stop", "s", *opts]) == 0
    assert main(["study", "resume", "s", *opts]) == 0 and not c.study("s")["stopped"]
    assert main(["study", "requeue", "s", *opts]) == 0
    assert "no failed trial" in capsys.readouterr().out
    assert main(["study", "delete", "s", "--yes", *opts]) == 0
    assert "1 networks" in capsys.readouterr().out
    assert main(["study", "resume", "s", *opts]) == 2
    assert "404" in capsys.readouterr().err


def test_an_epoch_budget_from_the_command_line(server, tmp_path, capsys):
    opts = ["--url", server, "--token", TOKEN]
    spec = tmp_path / "study.json"
    spec.write_text(json.dumps({k: v for k, v in study(name="e").items() if k != "budget"}))
    assert main(["submit", str(spec), "--budget-epochs", "5", *opts]) == 0
    assert "budget 100000 trials, 5 epochs" in capsys.readouterr().out
    assert main(["study", "budget", "e", "--budget-epochs", "8", *opts]) == 0
    assert "used 0/100000, 0/8 ep" in capsys.readouterr().out
    assert Client(server, TOKEN).study("e")["budget_epochs"] == 8
    assert main(["study", "budget", "e", "--budget-epochs", "8", *opts]) == 2
    assert "does not raise" in capsys.readouterr().err


def test_a_planned_screen_from_the_command_line_is_watched_to_its_finalists(server, tmp_path,
                                                                            capsys):
    opts = ["--url", server, "--token", TOKEN]
    spec = tmp_path / "study.json"
    spec.write_text(json.dumps({k: v for k, v in study(name="p", budget=4, epochs=1).items()
                                if k != "pruner"}))
    assert main(["submit", str(spec), "--finalists", "2", *opts]) == 0
    assert "pruner joint" in capsys.readouterr().out
    c = Client(server, TOKEN)
    worker = work(server)
    # the screen's end is not the study's: its finalists are queued before it looks done
    last = list(c.watch("p", interval=0.05, timeout=300))[-1]
    worker.join()
    assert done(last) and last["counts"] == {"pruned": 4, "complete": 2}
    assert main(["submit", str(spec), "--name", "q", "--pruner", "median", "--finalists", "2",
                 *opts]) == 2
    assert "names pruner 'median'" in capsys.readouterr().err
