"""The compose stack of the container tests: a Docker engine, the images built from the
repository, and `docker compose` on docker-compose.yml with tests/containers/compose.host.yml
merged over it (host networking, ports chosen here)."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from service.api import API_PREFIX as API
from service.local import free_port
from tests.service.support import USER

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LOCAL = ROOT / "docker" / "local"  # the build context's local inputs (wheels, CA bundle)
BASE_IMAGE = os.environ.get("AELLE_TEST_BASE_IMAGE", "aelle-base:bookworm")
POSTGRES_IMAGE = "aelle-test-postgres:15"
# one compose project per test process: two runs on one machine (two CI clones) must not
# take down each other's stack
PROJECT = f"aelle-containers-test-{os.getpid()}"


def docker_missing() -> str | None:
    """Why the container tests cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                          capture_output=True, text=True)
    if info.returncode != 0:
        return f"no Docker engine answers: {info.stderr.strip().splitlines()[-1:]}"
    if compose_command() is None:
        return "neither `docker compose` nor `docker-compose` is installed"
    return None


def compose_command() -> list[str] | None:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def sh(*argv, timeout=1800, env=None, check=True) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {p.returncode}:\n{p.stdout[-4000:]}\n"
                             f"{p.stderr[-4000:]}")
    return p.stdout


def _pip_config() -> dict[str, str]:
    out = sh(sys.executable, "-m", "pip", "config", "list")
    return {k.rsplit(".", 1)[-1]: v.strip("'\"")
            for k, v in (line.split("=", 1) for line in out.splitlines() if "=" in line)}


def local_build_inputs() -> list[str]:
    """Puts into docker/local what this machine's pip uses: the pinned torch wheel from its
    find-links (so the CPU image downloads no torch) and its CA bundle. The build arguments."""
    config = _pip_config()
    pin = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    for directory in config.get("find-links", "").split():
        for wheel in Path(directory.removeprefix("file://")).glob(f"torch-{pin}+cpu-*.whl"):
            target = LOCAL / wheel.name
            if not target.exists():
                try:
                    os.link(wheel, target)
                except OSError:
                    shutil.copy(wheel, target)
    args = ["--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    if any(LOCAL.glob(f"torch-{pin}+cpu-*.whl")):
        args += ["--build-arg", "TORCH_INDEX_URL="]  # the wheel is here: no other index
    cert = os.environ.get("PIP_CERT") or config.get("cert")
    if cert and Path(cert).is_file():
        target = LOCAL / "ca.pem"
        if not target.exists() or not filecmp.cmp(cert, target, shallow=False):
            shutil.copy(cert, target)  # only when changed: a new file defeats the build cache
        args += ["--build-arg", "CA_BUNDLE=docker/local/ca.pem"]
    return args


def build_images() -> None:
    """The base image (once per machine: docker/base-image.sh is a no-op when it exists), the
    CPU image and the tests' PostgreSQL image, from the build cache when nothing changed."""
    sh("bash", str(ROOT / "docker" / "base-image.sh"), BASE_IMAGE)
    sh("docker", "build", "--network", "host", "--target", "cpu", *local_build_inputs(),
       "-t", "aelle:cpu", str(ROOT))
    sh("docker", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
       "-t", POSTGRES_IMAGE, str(HERE / "postgres"))


def image_size(tag: str) -> int:
    return int(sh("docker", "image", "inspect", "--format", "{{.Size}}", tag).strip())


def host_network_compose() -> dict:
    """docker-compose.yml with tests/containers/compose.host.yml merged over it, as compose
    merges an override (mappings key by key, anything else replaced), and without published
    ports, which host networking has none of (an override can add ports, never remove them)."""
    merged = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    override = yaml.safe_load((HERE / "compose.host.yml").read_text())
    for name, changes in override["services"].items():
        service = merged["services"][name]
        for key, value in changes.items():
            if isinstance(value, dict):
                service[key] = {**service.get(key, {}), **value}
            else:
                service[key] = value
        service.pop("ports", None)
    return merged


class Stack:
    """`docker compose` on the project's file with the tests' overrides (a file of its own,
    removed by :meth:`down` with the volumes)."""

    def __init__(self):
        self.port, self.pg_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}{API}"
        self.env = {**os.environ, "AELLE_USER_TOKEN": USER["Authorization"].split()[1],
                    "AELLE_WORKER_TOKEN": "worker-secret-for-tests",
                    "POSTGRES_PASSWORD": "postgres-secret-for-tests",
                    "POSTGRES_IMAGE": POSTGRES_IMAGE,
                    # a killed worker's trial is retried within seconds, yet a worker starved
                    # of CPU on a loaded machine is not taken for dead
                    "AELLE_HEARTBEAT_INTERVAL": "2", "AELLE_GRACE_PERIOD": "20",
                    "AELLE_TEST_PORT": str(self.port),
                    "AELLE_TEST_PG_PORT": str(self.pg_port)}
        self.file = Path(tempfile.mkstemp(prefix="aelle-compose-", suffix=".yml")[1])
        self.file.write_text(yaml.safe_dump(host_network_compose()))
        self.argv = [*compose_command(), "--project-name", PROJECT, "--project-directory",
                     str(ROOT), "--file", str(self.file)]

    def compose(self, *args, timeout=600, check=True) -> str:
        return sh(*self.argv, *args, timeout=timeout, env=self.env, check=check)

    def up(self, workers: int) -> None:
        self.compose("up", "--detach", "--no-build", "--scale", f"worker={workers}",
                     "postgres", "coordinator", "worker")
        self.wait_healthy()

    def down(self, volumes=False) -> None:
        self.compose("down", *(["--volumes"] if volumes else []), "--timeout", "10",
                     check=not volumes)

    def close(self) -> None:
        self.down(volumes=True)
        self.file.unlink(missing_ok=True)

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "--quiet", service).split()

    def volume(self) -> str:
        return f"{PROJECT}_pgdata"

    def wait_healthy(self, timeout=180) -> None:
        wait_until(self._healthy, timeout, "the coordinator to answer its health check")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path):
        r = httpx.get(f"{self.url}{path}", headers=USER, timeout=30)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def download(self, path) -> bytes:
        r = httpx.get(f"{self.url}{path}", headers=USER, timeout=30)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.content

    def post(self, path, body):
        r = httpx.post(f"{self.url}{path}", headers=USER, json=body, timeout=30)
        assert r.status_code == 201, f"POST {path}: {r.status_code} {r.text}"
        return r.json()

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", check=False)


def wait_until(predicate, timeout, what):
    """Poll ``predicate`` until it holds; a dropped connection (a loaded machine, a container
    restarting) counts as "not yet", and the last one is named if time runs out."""
    deadline, dropped = time.monotonic() + timeout, None
    while True:
        try:
            if predicate():
                return
        except httpx.TransportError as e:
            dropped = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                                 + (f" (last connection error: {dropped!r})" if dropped else ""))
        time.sleep(0.5)
