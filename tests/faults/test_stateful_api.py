"""Stateful API fuzzing (schemathesis state machines over the OpenAPI links, inferred and
declared): random chains of calls, e.g. create a study, lease its trial, report, stop, read,
never make the coordinator answer a server error, and afterwards every stored study still
lists and a new study still leases. Run against SQLite and PostgreSQL (skipped, saying why,
where none answers)."""

from collections import Counter

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from service.api.app import create_app
from service.coordinator import Coordinator
from service.specs import StudyCreate
from tests.service.support import API, USER, WORKER, lease, patient_settings, study

WORKER_PATHS = (f"{API}/leases", f"{API}/trials")

# each chain starts from a new database, so a run takes a minute or more
pytestmark = pytest.mark.slow



def fresh_coordinator(config) -> Coordinator:
    """A coordinator on an emptied database holding one valid study to start from: the links
    lead from its lease to reports and results."""
    engine = sa.create_engine(config.database_url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        tables.drop_all(engine)
    finally:
        engine.dispose()
    coordinator = Coordinator(config)
    coordinator.create_study(StudyCreate.model_validate(study(name="seed", budget=50)))
    return coordinator


def release(coordinator: Coordinator) -> None:
    coordinator.close()
    coordinator.db.engine.dispose()
    coordinator.storage.engine.dispose()


def test_chains_of_calls_never_make_a_server_error(url):
    # no stale sweep within a chain: under load a 3 s grace period would fail its leases midway
    config = patient_settings(url)
    coordinator = fresh_coordinator(config)
    app = create_app(config, coordinator=coordinator)
    schema = schemathesis.openapi.from_asgi(f"{API}/openapi.json", app, headers=USER)
    # deleting a study ends every chain through it (its own tests: test_lifecycle.py)
    schema = schema.exclude(method="DELETE")
    links = schema.as_state_machine()
    answered = Counter()

    class Chains(links):
        def setup(self):
            """Each chain starts from the same database: Hypothesis replays a chain to shrink
            it, and the links it may follow depend on the answers, so on what earlier chains
            stored (a name they took, a trial they leased)."""
            release(app.state.coordinator)
            app.state.coordinator = fresh_coordinator(config)

        def get_call_kwargs(self, case):
            worker = case.path.startswith(WORKER_PATHS)
            return {"headers": WORKER if worker else USER}

        def after_call(self, response, case):
            super().after_call(response, case)  # recorded: the links read earlier answers
            answered[(case.method, case.path, response.status_code)] += 1
            assert response.status_code < 500, (case.method, case.path, response.text[:500])

        def validate_response(self, response, case, **kwargs):
            """The invariant here is "no server error" (after_call); schema conformance is
            the stateless fuzzer's (tests/service/test_fuzz.py)."""

    try:
        Chains.run(settings=settings(max_examples=50, stateful_step_count=8, deadline=None,
                                     derandomize=True,
                                     suppress_health_check=list(HealthCheck)))
        coordinator = app.state.coordinator
        with TestClient(create_app(config, coordinator=coordinator)) as client:
            listed = client.get(f"{API}/studies", params={"limit": 10_000}, headers=USER)
            assert listed.status_code == 200, listed.text
            for s in listed.json()["data"]:
                one = client.get(f"{API}/studies/{s['name']}", headers=USER)
                assert one.status_code == 200, one.text
            made = client.post(f"{API}/studies", json=study(name="after-the-chains", budget=1),
                               headers=USER)
            assert made.status_code == 201, made.text
            got = lease(client)
            assert got["trial_id"] is not None
        # the chains went deep: leases were followed by accepted calls on their trials
        on_trials = sum(n for (method, path, code), n in answered.items()
                        if path.startswith(f"{API}/trials/") and code == 200)
        assert on_trials > 0, sorted(answered.items())
    finally:
        release(app.state.coordinator)
