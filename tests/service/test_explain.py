"""``aelle explain STUDY`` against a real coordinator: a real worker trains tiny sysid networks,
the command downloads, rebuilds and explains them, ``--upload`` stores the reports, and
``GET .../explain`` serves them back; bad requests are named, nothing stored is lost."""

import json
import re

import httpx
import pytest

from aelle.cli import main
from tasks import registry
from tests.service.support import API, USER, patient_settings, serving
from tests.tasks.conftest import TINY
from workers.client import CoordinatorClient
from workers.runtime import Worker

TOKEN = "user-secret-for-tests"
SYSID = {"name": "sys", "task": "sysid", "budget": 3, "epochs": 2,
         "settings": {**TINY["sysid"], "epochs": 2}, "sampler": {"name": "random", "seed": 0},
         "pruner": {"name": "aelle"}}  # prunes nothing before its startup trials


def work(url):
    client = CoordinatorClient(url, "worker-secret-for-tests")
    try:
        return Worker(client, name="w", burst=True, progress=False).run()
    finally:
        client.close()


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory):
    """A coordinator keeping 2 networks per study, and a sysid study of 3 trials run by a real
    worker: the best 2 have a stored network, the third none."""
    db = tmp_path_factory.mktemp("explain") / "e.db"
    with serving(patient_settings(f"sqlite:///{db}", artifacts_kept=2)) as url:
        httpx.post(f"{url}{API}/studies", json=SYSID, headers=USER).raise_for_status()
        assert sum(work(url).values()) == 3
        trials = httpx.get(f"{url}{API}/studies/sys/trials", headers=USER).json()["data"]
        assert [t["state"] for t in trials] == ["complete"] * 3
        yield url, [t["number"] for t in trials]


def explain(url, *args):
    return main(["explain", *args, "--url", url, "--token", TOKEN, "--quiet"])


def get(url, path, **kw):
    return httpx.get(f"{url}{API}/studies/{path}", headers=USER, **kw)


def test_the_best_trials_are_explained_uploaded_and_served(coordinator, tmp_path, capsys):
    url, ranked = coordinator
    assert get(url, f"sys/trials/{ranked[0]}/explain").status_code == 404  # none stored yet
    assert explain(url, "sys", "--top", "2", "--upload", "--out", str(tmp_path)) == 0
    out = capsys.readouterr().out
    for number in ranked[:2]:
        local = json.loads((tmp_path / f"trial-{number}.json").read_text())
        page = (tmp_path / f"trial-{number}.html").read_text()
        assert f"trial {number}: stored on the coordinator" in out
        served = get(url, f"sys/trials/{number}/explain")
        assert served.status_code == 200 and served.json() == local
        assert local["meta"]["study"] == "sys" and local["meta"]["trial"] == number
        assert len(local["true_poles"]["re"]) == 4  # sysid knows its system's poles
        detail = get(url, f"sys/trials/{number}").json()
        assert local["lyapunov"]["epochs"] == [r["epoch"] for r in detail["reports"]]
        assert json.loads(local["meta"]["params"]) == detail["params"]
        html = get(url, f"sys/trials/{number}/explain", params={"format": "html"})
        assert html.status_code == 200 and html.text == page
        assert html.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in html.headers["content-security-policy"]
        link = detail["links"]["explain report"]  # the trial view's button reads this
        assert get(url, link.removeprefix("/studies/")).text == page
    assert "explain report" not in get(url, f"sys/trials/{ranked[2]}").json()["links"]
    # the default: the best trial alone, written beside (no upload)
    assert explain(url, "sys", "--out", str(tmp_path / "best")) == 0
    assert [p.name for p in sorted((tmp_path / "best").iterdir())] == [
        f"trial-{ranked[0]}.html", f"trial-{ranked[0]}.json"]


def test_what_cannot_be_explained_is_named(coordinator, tmp_path, capsys):
    url, ranked = coordinator
    assert explain(url, "nope", "--out", str(tmp_path)) == 2
    assert "no study named 'nope'" in capsys.readouterr().err
    assert explain(url, "sys", "--trial", "99", "--out", str(tmp_path)) == 2
    assert "study 'sys' has no trial 99" in capsys.readouterr().err
    worst = ranked[-1]  # beyond the best 2 kept: its network was deleted
    assert explain(url, "sys", "--trial", str(worst), "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"trial {worst}" in err and "no stored network" in err
    assert not list(tmp_path.iterdir())
    assert explain(url, "sys", "--task", "sysid", "--train") == 2
    assert "--task, --train explain one network without a study" in capsys.readouterr().err
    assert main(["explain", "--trial", "1", "--quiet"]) == 2
    assert "--trial need a STUDY" in capsys.readouterr().err
    assert main(["explain", "--task", "sysid", "--quiet"]) == 2
    assert "give a STUDY, or one network by --params, --state-dict or --train" in \
        capsys.readouterr().err
    assert main(["explain", "sys", "--url", url, "--token", "wrong-token-wrong-token",
                 "--out", str(tmp_path)]) == 2
    assert "401" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_trial_of_a_task_not_installed_here_is_named(coordinator, tmp_path, capsys,
                                                      monkeypatch):
    from tasks.plugins import import_task_module

    url, _ = coordinator
    with monkeypatch.context() as m:  # the toy task exists for the worker only
        m.setattr(registry._TASKS, "_items", dict(registry._TASKS._items))
        import_task_module("tests.tasks.toy_plugin")
        httpx.post(f"{url}{API}/studies", headers=USER, json={
            "name": "toy", "task": "toy_echo", "budget": 1, "epochs": 1,
            "settings": {"spectrum_sequences": 2, "spectrum_steps": 8,
                         "spectrum_warmup": 2}}).raise_for_status()
        assert sum(work(url).values()) == 1
    assert "toy_echo" not in registry.names()
    assert explain(url, "toy", "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "task 'toy_echo', which is not installed here" in err and "--task-module" in err
    with monkeypatch.context() as m:  # its module named: rebuilt, and a network the methods
        m.setattr(registry._TASKS, "_items", dict(registry._TASKS._items))  # cannot read
        assert explain(url, "toy", "--task-module", "tests.tasks.toy_plugin",
                       "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "its toy_echo network cannot be explained: cell_for does not know Echo" in err


def test_uploads_are_checked_and_a_refused_one_changes_nothing(coordinator, tmp_path):
    url, ranked = coordinator
    best, second = ranked[0], ranked[1]
    assert explain(url, "sys", "--trial", str(best), "--upload", "--out", str(tmp_path)) == 0
    doc = json.loads((tmp_path / f"trial-{best}.json").read_text())
    page = (tmp_path / f"trial-{best}.html").read_text()

    def put(number, report, html=page, **kw):
        return httpx.put(f"{url}{API}/studies/sys/trials/{number}/explain",
                         json={"report": report, "html": html}, **{"headers": USER, **kw})

    assert put(best, doc, headers={}).status_code == 401
    r = put(second, doc)  # another trial's parameters
    assert r.status_code == 422 and "parameters" in r.json()["detail"]
    r = put(best, {**doc, "meta": {**doc["meta"], "task": "flipflop"}})
    assert r.status_code == 422 and "task 'flipflop'" in r.json()["detail"]
    broken = json.loads(json.dumps(doc))
    del broken["koopman"]["eigenvalues_re"]
    r = put(best, broken)
    assert r.status_code == 422 and "eigenvalues_re" in json.dumps(r.json()["detail"])
    r = put(best, doc, html="<script>alert(1)</script>")
    assert r.status_code == 422 and "HTML document" in r.json()["detail"]
    body = re.sub(r'"max_exponent": [^,}]+', '"max_exponent": NaN',
                  json.dumps({"report": doc, "html": page}))
    r = httpx.put(f"{url}{API}/studies/sys/trials/{best}/explain", content=body,
                  headers={**USER, "content-type": "application/json"})
    assert r.status_code == 422 and "report.lyapunov.max_exponent" in r.json()["detail"]
    assert put(99, doc).status_code == 404
    assert get(url, f"sys/trials/{best}/explain").json() == doc  # unchanged by the refusals
    r = put(best, doc, html="x" * (17 << 20))  # over explain_max_bytes (16 MiB)
    assert r.status_code == 413
    # a JSON-only upload replaces the stored one; its HTML is then not there
    r = put(best, doc, html=None)
    assert r.status_code == 200 and r.json()["html"] is False
    assert get(url, f"sys/trials/{best}/explain").json() == doc
    r = get(url, f"sys/trials/{best}/explain", params={"format": "html"})
    assert r.status_code == 404 and "without its HTML" in r.json()["detail"]
    assert get(url, f"sys/trials/{best}/explain", params={"format": "pdf"}).status_code == 422
    assert get(url, "nope/trials/0/explain").status_code == 404


def test_deleting_the_study_deletes_its_explanations(coordinator, tmp_path, capsys):
    """Last: it deletes the module's study."""
    url, ranked = coordinator
    assert explain(url, "sys", "--trial", str(ranked[0]), "--upload", "--out",
                   str(tmp_path)) == 0
    r = httpx.delete(f"{url}{API}/studies/sys", headers=USER)
    assert r.status_code == 200 and r.json()["explains"] >= 1
    assert get(url, f"sys/trials/{ranked[0]}/explain").status_code == 404
    # a study of the same name starts with none
    httpx.post(f"{url}{API}/studies", json=SYSID, headers=USER).raise_for_status()
    r = get(url, f"sys/trials/{ranked[0]}/explain")
    assert r.status_code == 404 and "no stored explanation" in r.json()["detail"]
