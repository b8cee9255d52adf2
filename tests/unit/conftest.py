"""Hooks are tested against the sandbox's real servers on loopback, not against mocks."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.sandbox_env import sandbox_in_environ


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sandbox_in_environ(tmp_path_factory.mktemp("hook-sandbox"), employees=200) as box:
        yield box


@pytest.fixture
def faults(sandbox: Any) -> Iterator[Any]:
    base = sandbox.plansource_url

    def inject(status: int, count: int, retry_after: int | None = None) -> None:
        body = {"status": status, "count": count, "path_prefix": "/admin/v2", "retry_after": retry_after}
        requests.post(f"{base}/sandbox/faults", json=body, timeout=5).raise_for_status()

    yield inject
    requests.delete(f"{base}/sandbox/faults", timeout=5)
    requests.post(f"{base}/sandbox/token_ttl", json={"seconds": 300}, timeout=5)


def status_counts(sandbox: Any) -> dict[str, int]:
    return requests.get(f"{sandbox.plansource_url}/sandbox/stats", timeout=5).json()["data"][
        "requests_by_status"
    ]


@pytest.fixture
def hcm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HCM database (the hub's schema) that ``hcm_db`` points at."""
    schema = Path(__file__).resolve().parents[2] / "include" / "sql" / "hcm_schema.sql"
    db = tmp_path / "hcm.sqlite"
    with sqlite3.connect(db) as conn:
        conn.executescript(schema.read_text())
    monkeypatch.setenv("AIRFLOW_CONN_HCM_DB", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    return db
