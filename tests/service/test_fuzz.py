"""Property-based requests generated from the OpenAPI schema (schemathesis): whatever a
client sends, the coordinator answers without a server error."""

import atexit
import shutil
import tempfile

import schemathesis
from hypothesis import HealthCheck, settings

from service.api.app import create_app
from service.coordinator import Coordinator
from service.specs import StudyCreate
from tests.service.support import USER, WORKER, service_settings, study

# schemathesis reads the schema when the module is collected: the app needs its database then
_DIR = tempfile.mkdtemp(prefix="aelle-fuzz-")
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
_CONFIG = service_settings(f"sqlite:///{_DIR}/fuzz.db")
_COORDINATOR = Coordinator(_CONFIG)
_COORDINATOR.create_study(StudyCreate.model_validate(study(name="s", budget=5)))
_COORDINATOR.lease("fuzz")  # a running trial, so that trial paths can meet a real id
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json",
                                        create_app(_CONFIG, coordinator=_COORDINATOR),
                                        headers=USER)


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_request_makes_a_server_error(case):
    # the worker token for the worker's paths, the user token elsewhere
    worker_path = case.path.startswith(("/api/v1/leases", "/api/v1/trials"))
    response = case.call(headers=WORKER if worker_path else USER)
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
