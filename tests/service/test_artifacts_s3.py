"""The S3 artifact store against a real S3-compatible server: moto's, on 127.0.0.1."""

import httpx
import pytest

import aelle
from tests.service.support import API, USER, service_settings, serving, study
from workers.client import CoordinatorClient
from workers.runtime import Worker

moto_server = pytest.importorskip(
    "moto.server", reason="moto's server is not installed: pip install 'moto[server]' boto3")
boto3 = pytest.importorskip("boto3", reason="boto3 is not installed: pip install 'aelle[s3]'")


@pytest.fixture
def s3(monkeypatch):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="nets")
    yield endpoint, client
    server.stop()


def test_networks_go_to_the_bucket_and_only_the_best_stay(tmp_path, s3):
    endpoint, bucket = s3
    settings = service_settings(f"sqlite:///{tmp_path}/s3.db", artifacts_kept=1,
                                artifact_s3_bucket="nets", artifact_s3_endpoint=endpoint)
    with serving(settings) as url:
        httpx.post(f"{url}{API}/studies", json=study(budget=3, epochs=1),
                   headers=USER).raise_for_status()
        client = CoordinatorClient(url, "worker-secret-for-tests")
        Worker(client, name="w", burst=True, progress=False).run()
        client.close()
        summary = httpx.get(f"{url}{API}/studies/s", headers=USER).json()
        best = summary["best"]
        r = httpx.get(f"{url}{API}/studies/s/trials/{best['number']}/artifact", headers=USER)
    assert r.status_code == 200
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket="nets").get("Contents", [])]
    assert len(keys) == 1  # the two worse trials' networks were deleted from the bucket
    assert bucket.get_object(Bucket="nets", Key=keys[0])["Body"].read() == r.content
    assert not (tmp_path / "s3.db.artifacts").exists()
    assert aelle.load_trial_run(r.content).validate() == pytest.approx(best["value"], rel=1e-6)
