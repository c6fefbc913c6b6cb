"""Health, tokens, the schema and the body limits: the app around the use cases."""

from fastapi.testclient import TestClient

from service.api.app import create_app
from tests.service.support import API, SETTINGS, USER, WORKER, service_settings, study


def test_health_is_open_and_everything_else_needs_the_right_token(client):
    assert client.get(f"{API}/health").json() == {"status": "ok", "database": "ok"}
    assert client.get(f"{API}/studies").status_code == 401
    assert client.get(f"{API}/studies", headers={"Authorization": "Bearer nope"}).status_code \
        == 401
    assert client.get(f"{API}/studies", headers=WORKER).status_code == 401  # users only
    assert client.post(f"{API}/leases", json={}, headers=USER).status_code == 401  # workers
    assert client.post(f"{API}/leases", json={}).status_code == 401
    assert client.get(f"{API}/studies", headers=USER).status_code == 200


def test_oversized_and_malformed_bodies_are_refused(client):
    big = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    r = client.post(f"{API}/studies", content=big,
                    headers={**USER, "content-type": "application/json"})
    assert r.status_code == 413
    r = client.post(f"{API}/studies", content=b"{not json",
                    headers={**USER, "content-type": "application/json"})
    assert r.status_code == 422
    r = client.post(f"{API}/studies", json={**study(), "colour": "red"}, headers=USER)
    assert r.status_code == 422 and "colour" in str(r.json()["detail"])


def test_openapi_documents_every_resource(client):
    paths = client.get(f"{API}/openapi.json", headers=USER).json()["paths"]
    for path in ("/api/v1/studies", "/api/v1/studies/{name}/trials", "/api/v1/leases",
                 "/api/v1/trials/{trial_id}/reports", "/api/v1/trials/{trial_id}/result",
                 "/api/v1/trials/{trial_id}/heartbeat", "/api/v1/studies/{name}/model",
                 "/api/v1/health"):
        assert path in paths
    assert SETTINGS  # the shared tiny settings are what studies here run with


def test_only_health_answers_without_a_token(client):
    assert client.get(f"{API}/health").status_code == 200
    for path in ("/openapi.json", "/docs", "/redoc"):  # not served unless asked for
        assert client.get(path).status_code == 404, path
    r = client.get(f"{API}/openapi.json")
    assert r.status_code == 401 and "user token" in r.json()["detail"]
    assert client.get(f"{API}/openapi.json", headers=WORKER).status_code == 401


def test_public_docs_serve_the_schema_and_its_pages(tmp_path):
    settings = service_settings(f"sqlite:///{tmp_path}/docs.db").model_copy(
        update={"public_docs": True})
    with TestClient(create_app(settings)) as open_client:
        assert "/api/v1/studies" in open_client.get("/openapi.json").json()["paths"]
        assert "swagger" in open_client.get("/docs").text.lower()
        assert open_client.get(f"{API}/studies").status_code == 401  # the data stays closed
