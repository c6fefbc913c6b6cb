"""On PostgreSQL: eight workers at once against one coordinator, and two coordinators sharing
one database. Skipped (with the reason) where no PostgreSQL answers; CI sets
AELLE_REQUIRE_POSTGRES=1, which turns that skip into a failure."""

import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from sqlalchemy import func, select

from service.coordinator import Coordinator
from service.db import LeaseRow, ReportRow
from service.specs import StudyCreate
from tests.service.support import USER, service_settings, serving, study
from workers.client import CoordinatorClient
from workers.runtime import Worker

ADMIN = os.environ.get("AELLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url():
    try:
        admin = psycopg.connect(ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        reason = f"no PostgreSQL at {ADMIN}: {str(e).strip().splitlines()[0]}"
        if os.environ.get("AELLE_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (AELLE_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    name = f"aelle_test_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def burst_worker(url: str, i: int) -> dict:
    """Worker ``w<i>`` run until the coordinator has no work; its trials by outcome."""
    client = CoordinatorClient(url, "worker-secret-for-tests")
    try:
        return Worker(client, name=f"w{i}", burst=True, progress=False).run()
    finally:
        client.close()


def test_eight_workers_budget_exact_no_double_lease_every_report_stored(pg_url):
    settings = service_settings(pg_url)
    with serving(settings) as url:
        r = httpx.post(f"{url}/api/v1/studies", json=study(budget=24, epochs=1), headers=USER)
        assert r.status_code == 201, r.text

        with ThreadPoolExecutor(8) as pool:
            counts = list(pool.map(lambda i: burst_worker(url, i), range(8)))
        assert sum(sum(c.values()) for c in counts) == 24
        trials = httpx.get(f"{url}/api/v1/studies/s/trials", headers=USER).json()["data"]
    assert len(trials) == 24 and len({t["trial_id"] for t in trials}) == 24
    check = Coordinator(settings)
    with check.db.session() as s:
        leases = s.scalars(select(LeaseRow.trial_id)).all()
        reports = s.scalar(select(func.count()).select_from(ReportRow))
    assert sorted(leases) == sorted(t["trial_id"] for t in trials)  # one lease per trial
    assert reports == sum(t["epochs"] for t in trials)  # every reported epoch stored


def test_a_planned_screen_with_four_workers_runs_its_best_once_and_is_watched_to_the_end(
        pg_url):
    from aelle.client import Client, done

    settings = service_settings(pg_url)
    with serving(settings) as url:
        spec = study(budget=12, epochs=1, pruner={"name": "joint",
                                                  "settings": {"finalists": 2}})
        r = httpx.post(f"{url}/api/v1/studies", json=spec, headers=USER)
        assert r.status_code == 201, r.text
        watcher = Client(url, "user-secret-for-tests")
        seen = []
        watching = threading.Thread(target=lambda: seen.extend(
            watcher.watch("s", interval=0.05, timeout=600)))
        watching.start()

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: burst_worker(url, i), range(4)))
        watching.join()
        trials = httpx.get(f"{url}/api/v1/studies/s/trials", headers=USER).json()["data"]
        first = {t["number"]: httpx.get(f"{url}/api/v1/studies/s/trials/{t['number']}",
                                        headers=USER).json()["reports"][0]["prediction"]
                 for t in trials if t["state"] == "pruned"}
    # the watch ended only when the finalists had: never between the screen and them
    assert done(seen[-1]) and seen[-1]["counts"] == {"pruned": 12, "complete": 2}
    finalists = sorted(t["retry_of"] for t in trials if t["state"] == "complete")
    assert finalists == sorted(sorted(first, key=lambda n: (first[n], n))[:2])


def test_two_coordinators_on_one_database_keep_the_budget(pg_url):
    a, b = Coordinator(service_settings(pg_url)), Coordinator(service_settings(pg_url))
    a.create_study(StudyCreate.model_validate(study(budget=10)))
    got, lock = [], threading.Lock()

    def take(c, i):
        while (lease := c.lease(f"w{i}")) is not None:
            with lock:
                got.append(lease.trial_id)

    threads = [threading.Thread(target=take, args=(c, i)) for i, c in enumerate([a, b] * 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 10 and len(set(got)) == 10


def test_coordinators_starting_together_migrate_once(pg_url):
    from service.migrations import migrate

    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda _: migrate(pg_url), range(4)))
    assert sorted(len(d) for d in done) == [0, 0, 0, 1] and "created" in max(done)[0]


def test_an_explanation_is_stored_replaced_served_and_deleted(pg_url, tmp_path):
    import json

    from aelle.cli import main
    from tests.service.test_explain import SYSID, TOKEN, work

    with serving(service_settings(pg_url)) as url:
        api = f"{url}/api/v1/studies"
        httpx.post(api, json={**SYSID, "budget": 1}, headers=USER).raise_for_status()
        assert sum(work(url).values()) == 1
        for _ in range(2):  # the second upload replaces the first
            assert main(["explain", "sys", "--trial", "0", "--upload", "--url", url, "--token",
                         TOKEN, "--out", str(tmp_path), "--quiet"]) == 0
        local = json.loads((tmp_path / "trial-0.json").read_text())
        assert httpx.get(f"{api}/sys/trials/0/explain", headers=USER).json() == local
        page = httpx.get(f"{api}/sys/trials/0/explain", params={"format": "html"}, headers=USER)
        assert page.text == (tmp_path / "trial-0.html").read_text()
        assert "explain report" in httpx.get(f"{api}/sys/trials/0", headers=USER).json()["links"]
        r = httpx.delete(f"{api}/sys", headers=USER)
        assert r.status_code == 200 and r.json()["explains"] == 1
        assert httpx.get(f"{api}/sys/trials/0/explain", headers=USER).status_code == 404
