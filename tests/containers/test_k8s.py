"""deploy/k8s/ against the Kubernetes schemas (kubernetes-validate, or kubeconform where that
is installed instead), and against the code: the commands, probes, secrets and GPUs."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aelle.cli import build_parser
from service.api import API_PREFIX as API

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
DOCS = {(d["kind"], d["metadata"]["name"]): d for p in MANIFESTS
        for d in yaml.safe_load_all(p.read_text()) if d}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path):
    try:
        import kubernetes_validate
    except ImportError:
        kubeconform = shutil.which("kubeconform")
        if kubeconform is None:
            pytest.skip("neither kubernetes-validate nor kubeconform is installed")
        p = subprocess.run([kubeconform, "-strict", "-summary", str(path)],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
        return
    version = kubernetes_validate.latest_version()
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, version, strict=True)  # raises on an invalid field


def test_the_validator_refuses_a_broken_manifest():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    broken = next(yaml.safe_load_all((K8S / "coordinator.yaml").read_text()))
    broken["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_applies_every_manifest_but_the_example_secret():
    resources = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(resources) == sorted(p.name for p in MANIFESTS if "example" not in p.name)


def container(name):
    return DOCS[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]


def test_coordinator_is_a_deployment_behind_a_service_with_probes_on_health():
    c = container("aelle-coordinator")
    args = build_parser().parse_args(c["args"])
    assert args.command == "serve" and args.host == "0.0.0.0" and args.wait_db > 0
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["path"] == f"{API}/health"
        assert c[probe]["httpGet"]["port"] == "http"
    assert c["ports"] == [{"name": "http", "containerPort": args.port}]
    service = DOCS[("Service", "aelle-coordinator")]["spec"]
    labels = DOCS[("Deployment", "aelle-coordinator")]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"] == labels
    assert service["ports"][0]["port"] == args.port


def test_workers_reach_the_service_with_one_gpu_each_and_tokens_come_from_the_secret():
    w = container("aelle-worker")
    args = build_parser().parse_args(w["args"])
    assert args.command == "worker" and args.url == "http://aelle-coordinator:8000"
    assert w["resources"]["limits"]["nvidia.com/gpu"] == 1
    secret = DOCS[("Secret", "aelle")]["stringData"]
    for c in (w, container("aelle-coordinator")):
        for var in c["env"]:
            if "AELLE_" in var["name"] and ("TOKEN" in var["name"] or "URL" in var["name"]):
                ref = var["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "aelle" and ref["key"] in secret
    names = {v["name"] for v in w["env"]}
    assert "AELLE_WORKER_NAME" in names  # each pod leases under its own name
