"""The compose file and the Dockerfile checked against each other and against the code, in
milliseconds and without Docker (tests/containers/ runs them for real)."""

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
TEST_COMPOSE = yaml.safe_load((ROOT / "tests/containers/compose.host.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
STAGES = {name: base for base, name in re.findall(r"^FROM (\S+) AS (\S+)$", DOCKERFILE, re.M)}
# what the code reads from the environment: the settings of the coordinator, the worker and
# the user's commands
READ = {f"AELLE_{name.upper()}" for settings in (ServiceSettings, WorkerSettings, ClientSettings)
        for name in settings.model_fields}


def stage(name: str) -> str:
    """The Dockerfile's text from `FROM ... AS name` to the next FROM."""
    return re.search(rf"^FROM \S+ AS {name}$(.*?)(?=^FROM |\Z)", DOCKERFILE, re.M | re.S)[1]


def test_the_services_are_there_and_wait_for_healthy_dependencies():
    assert {"postgres", "coordinator", "worker", "worker-gpu", "dashboard"} <= set(SERVICES)
    for name in ("postgres", "coordinator"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert SERVICES["coordinator"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "worker-gpu"):
        assert SERVICES[name]["depends_on"]["coordinator"]["condition"] == "service_healthy"
    # the dashboard creates no tables: it starts after the coordinator has migrated them
    assert SERVICES["dashboard"]["depends_on"]["coordinator"]["condition"] == "service_healthy"


def test_only_what_serves_has_a_healthcheck():
    # the image also runs workers, which serve nothing
    assert not re.search(r"^HEALTHCHECK", DOCKERFILE, re.M)
    for name in ("worker", "worker-gpu"):
        assert "healthcheck" not in SERVICES[name], name


def test_every_image_of_ours_is_built_here_so_nothing_is_pulled():
    built = {s["image"]: s["build"]["target"] for s in SERVICES.values() if "build" in s}
    assert built == {"aelle:cpu": "cpu", "aelle:cuda": "cuda", "aelle:dashboard": "dashboard"}
    for name, s in SERVICES.items():
        if s["image"].startswith("aelle:"):  # a build of its own: compose never pulls it
            assert s["build"]["target"] == built[s["image"]], name
            assert s["build"]["context"] == "."
    assert SERVICES["worker"]["image"] == SERVICES["coordinator"]["image"] == "aelle:cpu"
    assert SERVICES["worker-gpu"]["image"] == "aelle:cuda"
    assert set(built.values()) <= set(STAGES)


def test_every_long_running_service_restarts():
    for name, s in SERVICES.items():
        assert s["restart"] == "unless-stopped", name


def test_the_profiles_keep_cpu_and_gpu_workers_apart():
    assert SERVICES["worker"]["profiles"] == ["cpu"]
    assert SERVICES["worker-gpu"]["profiles"] == ["gpu"]
    assert "profiles" not in SERVICES["postgres"] and "profiles" not in SERVICES["coordinator"]


def test_a_gpu_worker_reserves_one_named_device_and_cpu_workers_none():
    devices = SERVICES["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert len(devices) == 1 and devices[0]["driver"] == "nvidia"
    assert "gpu" in devices[0]["capabilities"]
    assert devices[0]["device_ids"] == ["${AELLE_GPU:-0}"] and "count" not in devices[0]
    assert "deploy" not in SERVICES["worker"]


def test_the_dashboard_is_on_loopback_and_on_our_optuna():
    assert SERVICES["dashboard"]["ports"] == ["127.0.0.1:8080:8080"]
    assert re.search(r"ARG OPTUNA_DASHBOARD_VERSION=\d+\.\d+\.\d+", DOCKERFILE)
    build = stage("build-dashboard")
    assert "COPY --from=build-cpu /opt/aelle/requirements.lock" in build
    assert "^(optuna|" in build  # Optuna pinned to the release the aelle image holds


def test_secrets_come_from_the_environment_and_env_example_names_them_all():
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required == {"AELLE_USER_TOKEN", "AELLE_WORKER_TOKEN", "POSTGRES_PASSWORD"}
    example = (ROOT / ".env.example").read_text()
    for var in set(re.findall(r"\$\{(\w+)", text)):
        assert re.search(rf"^#? ?{var}=", example, re.M), f".env.example lacks {var}"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


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
    assert SERVICES["coordinator"]["ports"] == [f"${{AELLE_BIND:-127.0.0.1}}:{port}:{port}"]
    assert f"EXPOSE {port}" in stage("cpu") and f"EXPOSE {port}" in stage("cuda")
    assert f":{port}/api/v1/health" in str(SERVICES["coordinator"]["healthcheck"]["test"])
    for name in ("worker", "worker-gpu"):
        c = SERVICES[name]["command"]
        assert c[c.index("--url") + 1] == f"http://coordinator:{port}"


def test_commands_use_options_the_cli_has():
    parser = build_parser()
    for services in (SERVICES, TEST_COMPOSE["services"]):
        for name in ("coordinator", "worker", "worker-gpu"):
            if name in services:
                # a port the tests choose stands in for its variable
                argv = [re.sub(r"\$\{AELLE_TEST_PORT[^}]*\}", "18000", a)
                        for a in services[name]["command"]]
                args = parser.parse_args(argv)  # exits on an unknown option
                assert args.command in ("serve", "worker")


def test_the_tests_run_every_container_on_the_host_network():
    for name, s in TEST_COMPOSE["services"].items():
        assert s["network_mode"] == "host", name
    assert set(TEST_COMPOSE["services"]) == {"postgres", "coordinator", "worker"}


def test_the_dockerfile_takes_a_base_image_and_builds_cpu_and_cuda_as_a_user():
    assert DOCKERFILE.startswith("#")
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", DOCKERFILE, re.M)
    assert {"cpu", "cuda", "dashboard"} <= set(STAGES)
    for name in ("cpu", "cuda", "dashboard"):
        assert STAGES[name] == "runtime" and "USER aelle" in stage(name), name
    assert "useradd" in stage("runtime")
    for arg in ("CA_BUNDLE", "WHEEL_DIR", "PIP_INDEX_URL"):
        assert f"ARG {arg}" in stage("build"), arg
    for name in ("build-cpu", "build-cuda"):
        assert "torch.version.cuda" in stage(name), name  # the build it says it is


def test_dockerfile_installs_the_project_with_its_torch_pin_and_every_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "torch==2.13.0" in project["project"]["dependencies"]
    assert "pyproject.toml" in stage("requirements")  # the pin is read from it, not repeated
    for name in ("build-cpu", "build-cuda"):
        for package in project["tool"]["setuptools"]["packages"]["find"]["include"]:
            p = package.rstrip("*")
            assert f"COPY {p} /src/{p}" in stage(name), (name, p)
        assert "pip install --no-deps /src" in stage(name)


def test_the_build_context_holds_the_packages_and_not_the_virtualenv():
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") if "*" in ignore else 0] == "*"
    for path in ("pyproject.toml", "README.md", "aelle", "tasks", "workers", "service",
                 "docker/local"):
        assert f"!{path}" in ignore, path
