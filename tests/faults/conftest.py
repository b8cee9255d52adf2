"""Fault-injection suite fixtures: the e2e suite's Airflow metadata DB and hub-state cleaning, and the
report table every fault test adds its row to (test-artifacts/fault-report.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import airflow_db, clean_hub_state  # noqa: F401 - the same fixtures, shared
from tests.faults.harness import REPO, FaultReport

REPORT_PATH = REPO / "test-artifacts" / "fault-report.md"


@pytest.fixture(scope="session")
def fault_report() -> Iterator[FaultReport]:
    report = FaultReport()
    yield report
    report.write(REPORT_PATH)
