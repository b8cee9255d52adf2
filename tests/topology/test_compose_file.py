"""docker-compose.yaml, checked without a Docker engine: valid against the Compose Specification's JSON
schema, the same topology tests/topology/test_celery_cluster.py starts natively, and every service,
port, volume and variable in it documented in docs/production.md.

The Compose Specification's schema comes from the ``check-jsonschema`` package, which ships it (with
its licence) among its built-in vendor schemas and keeps it current: nothing is copied into this repo.
"""

from __future__ import annotations

import json
import re
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.topology.cluster import SERVICES, STAGING_CONN_ID, WORKERS

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCS = REPO / "docs" / "production.md"
SCHEMA = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
AIRFLOW_SERVICES = ("airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", *WORKERS)
# ${NAME}, ${NAME:-default}, ${NAME:?error}; "$${...}" is an escaped dollar, not a variable.
INTERPOLATED = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


@cache
def compose() -> dict[str, Any]:
    # YAML anchors and merge keys (<<) resolved, as Compose resolves them before validating.
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def environment(service: str) -> dict[str, str]:
    return {name: str(value) for name, value in (services()[service].get("environment") or {}).items()}


def compose_validator() -> Any:
    # The schema names its own JSON Schema draft (2020-12 today); validate with that draft's rules.
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    validator = compose_validator()
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_the_schema_rejects_what_compose_rejects() -> None:
    # The check is only worth something if the schema bites: an unknown key in a service must fail.
    broken = {"services": {"api-server": {**services()["api-server"], "hostnmae": "typo"}}}
    assert not compose_validator().is_valid(broken)


def test_every_service_the_native_test_starts_is_in_the_compose_file() -> None:
    assert set(SERVICES) <= set(services())
    assert "triggerer" in services()  # runs deferred tasks (the draft review's approval)


def test_two_distinct_celery_workers_with_the_shared_settings() -> None:
    commands = [services()[w]["command"] for w in WORKERS]
    assert all(c.startswith("celery worker") for c in commands)
    assert len({c.split("--celery-hostname")[1].split()[0] for c in commands}) == len(WORKERS)
    assert len({services()[w]["hostname"] for w in WORKERS}) == len(WORKERS)
    for worker in WORKERS:
        assert "sandbox-data:/sandbox" in services()[worker]["volumes"]
    # Every Airflow component reads the same configuration (the x-airflow-common anchor).
    shared = {k: v for k, v in environment("scheduler").items() if k.startswith("AIRFLOW")}
    for service in AIRFLOW_SERVICES:
        assert {k: v for k, v in environment(service).items() if k in shared} == shared, service


def test_the_settings_make_a_celery_cluster_with_s3_staging() -> None:
    env = environment("scheduler")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
    # One JWT secret and one Fernet key for every component (set once, in .env).
    assert "${AIRFLOW_JWT_SECRET:?" in COMPOSE_FILE.read_text()
    assert "${AIRFLOW_FERNET_KEY:?" in COMPOSE_FILE.read_text()
    assert env["AIRFLOW__BENEFITS_HUB__STAGING_URL"].split(":-")[-1].startswith("s3://")
    assert env["AIRFLOW__BENEFITS_HUB__STAGING_CONN_ID"] == STAGING_CONN_ID
    assert f"AIRFLOW_CONN_{STAGING_CONN_ID.upper()}" in env
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/hub/dags"


def test_the_init_runs_the_set_up_script_of_the_native_test_and_every_script_exists() -> None:
    assert services()["airflow-init"]["entrypoint"] == ["bash", "/opt/hub/docker/airflow-init.sh"]
    referenced = set(re.findall(r"/opt/hub/docker/([\w.-]+)", COMPOSE_FILE.read_text()))
    assert referenced and all((REPO / "docker" / name).is_file() for name in referenced), referenced


def test_the_image_is_the_official_airflow_image_of_the_pinned_version() -> None:
    pinned = next(
        d.split("==")[1]
        for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
        if d.startswith("apache-airflow==")
    )
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"FROM apache/airflow:{pinned}\n" in dockerfile
    assert f'"apache-airflow=={pinned}"' in dockerfile
    assert services()["api-server"]["image"].endswith(f":{pinned}")


def documented_names() -> dict[str, set[str]]:
    """Everything docs/production.md must name: services, ports, volumes (and mount points), variables."""
    names: dict[str, set[str]] = {"service": set(), "port": set(), "volume": set(), "variable": set()}
    names["variable"] |= set(INTERPOLATED.findall(COMPOSE_FILE.read_text()))
    names["volume"] |= set(compose()["volumes"])
    for name, service in services().items():
        names["service"].add(name)
        names["variable"] |= set((service.get("environment") or {}).keys())
        for port in [*service.get("ports", []), *service.get("expose", [])]:
            names["port"].add(str(port).split(":")[-1])
        for mount in service.get("volumes", []):
            names["volume"].add(mount.split(":")[1])
    return names


def test_every_service_port_volume_and_variable_is_documented() -> None:
    text = DOCS.read_text()
    missing = {
        kind: sorted(name for name in found if f"`{name}`" not in text)
        for kind, found in documented_names().items()
    }
    assert missing == {kind: [] for kind in missing}, "not named in docs/production.md (in backticks)"


def test_every_image_is_pinned_to_a_version() -> None:
    """A tag like ``latest`` or a bare major version moves under a cluster: two machines would run
    different servers from the same file."""
    for name, service in services().items():
        image = service.get("image")
        if image is None:
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image}"
        # 16.10, 1.8.0.3, or a dated release (RELEASE.2025-09-07T16-13-09Z)
        assert re.search(r"\d+\.\d+|\d{4}-\d{2}-\d{2}", tag), f"{name}: {image} names no exact version"
