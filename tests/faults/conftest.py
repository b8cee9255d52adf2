"""Fault-injection suite fixtures: the Airflow metadata DB (migrated once per session, whichever suite
gets there first), the e2e suite's hub-state cleaning, and the report table every fault test adds its
rows to (test-artifacts/fault-report.md)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import clean_hub_state  # noqa: F401 - the same fixture, shared
from tests.faults.harness import REPO, FaultReport

REPORT_PATH = REPO / "test-artifacts" / "fault-report.md"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """``airflow db migrate`` into the test AIRFLOW_HOME, unless the e2e suite already did."""
    from airflow.utils.db import check_migrations

    try:
        check_migrations(timeout=1)
    except Exception:  # not migrated yet (or no database at all)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def fault_report() -> Iterator[FaultReport]:
    report = FaultReport()
    yield report
    report.write(REPORT_PATH)
