"""Fixtures shared across test packages: a coordinator on a fresh SQLite file, reached through
FastAPI's TestClient (``client``) or a real uvicorn server in a thread (``server``)."""

import os

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from tests.service.support import service_settings, serving


@pytest.fixture
def settings(tmp_path):
    return service_settings(f"sqlite:///{tmp_path}/aelle.db")


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def server(settings):
    with serving(settings) as url:
        yield url


def pytest_collection_modifyitems(config, items):
    """Slow integration suites run in CI (``.ci/run`` sets AELLE_RUN_SLOW=1), not by default."""
    if os.environ.get("AELLE_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow integration test: set AELLE_RUN_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
