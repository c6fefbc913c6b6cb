"""No Docker engine runs here: the compose file and the Dockerfile are checked against each
other and against the code (services, images, the environment the code reads, ports,
healthchecks)."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from aelle.cli import build_parser
from service.config import ClientSettings, ServiceSettings
from workers.config import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
# what the code reads from the environment: the settings of the coordinator, the worker and
# the user's commands
READ = {f"AELLE_{name.upper()}" for settings in (ServiceSettings, WorkerSettings, ClientSettings)
        for name in settings.model_fields}


def test_the_services_are_there_and_wait_for_healthy_dependencies():
    assert {"postgres", "coordinator", "worker", "worker-gpu", "dashboard"} <= set(SERVICES)
    for name in ("postgres", "coordinator"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert SERVICES["coordinator"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "worker-gpu"):
        assert SERVICES[name]["depends_on"]["coordinator"]["condition"] == "service_healthy"
    assert SERVICES["dashboard"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_one_image_built_here_runs_coordinator_and_workers():
    image = SERVICES["coordinator"]["image"]
    assert SERVICES["coordinator"]["build"] == "."
    assert SERVICES["worker"]["image"] == SERVICES["worker-gpu"]["image"] == image
    assert SERVICES["coordinator"]["command"][0] == "serve"
    assert SERVICES["worker"]["command"][0] == "worker"
    assert 'ENTRYPOINT ["aelle"]' in DOCKERFILE


def test_the_gpu_workers_reserve_a_gpu_and_the_cpu_workers_do_not():
    devices = SERVICES["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "deploy" not in SERVICES["worker"]


@pytest.mark.parametrize("name", ["coordinator", "worker", "worker-gpu"])
def test_every_aelle_variable_set_is_one_the_code_reads(name):
    env = SERVICES[name].get("environment", {})
    unknown = {k for k in env if k.startswith("AELLE_")} - READ
    assert not unknown, f"{name} sets {unknown}, which no code reads"


def test_the_coordinator_gets_what_it_requires():
    env = SERVICES["coordinator"]["environment"]
    for key in ("AELLE_DATABASE_URL", "AELLE_USER_TOKEN", "AELLE_WORKER_TOKEN"):
        assert key in env
    assert env["AELLE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["AELLE_DATABASE_URL"]
    pg = SERVICES["postgres"]["environment"]
    assert f"/{pg['POSTGRES_DB']}" in env["AELLE_DATABASE_URL"]
    assert f"{pg['POSTGRES_USER']}:" in env["AELLE_DATABASE_URL"]
    assert "AELLE_WORKER_TOKEN" in SERVICES["worker"]["environment"]


def test_ports_agree_between_command_ports_dockerfile_and_workers():
    cmd = SERVICES["coordinator"]["command"]
    port = cmd[cmd.index("--port") + 1]
    assert f"{port}:{port}" in SERVICES["coordinator"]["ports"]
    assert f"EXPOSE {port}" in DOCKERFILE
    assert f":{port}/api/v1/health" in str(SERVICES["coordinator"]["healthcheck"]["test"])
    for name in ("worker", "worker-gpu"):
        c = SERVICES[name]["command"]
        assert c[c.index("--url") + 1] == f"http://coordinator:{port}"
    assert "127.0.0.1:8080:8080" in SERVICES["dashboard"]["ports"]  # never every interface


def test_commands_use_options_the_cli_has():
    parser = build_parser()
    for name in ("coordinator", "worker", "worker-gpu"):
        args = parser.parse_args(SERVICES[name]["command"])  # exits on an unknown option
        assert args.command in ("serve", "worker")


def test_dockerfile_installs_the_project_with_its_torch_pin_and_every_package():
    assert DOCKERFILE.startswith("#") and "FROM python:3.11" in DOCKERFILE
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "torch==2.13.0" in project["project"]["dependencies"]
    for package in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        name = package.rstrip("*")
        assert f"COPY {name} ./{name}" in DOCKERFILE, name
    assert re.search(r"pip install .*\s\.\s", DOCKERFILE)
