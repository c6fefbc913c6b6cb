"""Fixtures shared across test packages: a coordinator on a fresh SQLite file, reached through
FastAPI's TestClient (``client``) or a real uvicorn server in a thread (``server``)."""

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
