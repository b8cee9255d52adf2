"""After the end-to-end runs: no seeded SSN in any task log, XCom value or error file.

Named ``zz`` so it runs after the other end-to-end modules in this directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import SSN_LOG, TASK_LOG_DIR
from tests.e2e.pii_scan import find_ssns, read_texts

pytestmark = pytest.mark.e2e


def _seeded_ssns() -> set[str]:
    if not SSN_LOG.exists():
        pytest.skip("no end-to-end run in this session: run it with the e2e tests")
    return {line.strip() for line in SSN_LOG.read_text().splitlines() if line.strip()}


def test_scanner_finds_a_planted_ssn(tmp_path: Path) -> None:
    """The scan below is only worth something if it can fail."""
    log = tmp_path / "task.log"
    log.write_text("employee E000012 ssn=180-01-7851 rejected\nid 1800178519 is a longer number\n")
    hits = find_ssns(read_texts([log]), ["180017851"])
    assert hits == [(str(log), "***-**-7851")]


def test_no_ssn_in_any_task_log() -> None:
    ssns = _seeded_ssns()
    logs = sorted(TASK_LOG_DIR.rglob("*.log"))
    assert logs, "the end-to-end tests wrote no task logs"
    assert sum(p.stat().st_size for p in logs) > 10_000, "task logs are suspiciously small"
    assert find_ssns(read_texts(logs), ssns) == []


def test_no_ssn_in_any_xcom() -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    ssns = _seeded_ssns()
    with create_session() as session:
        rows = session.query(XComModel).all()
        texts = [
            (f"xcom {r.dag_id}/{r.run_id}/{r.task_id}/{r.key}", json.dumps(r.value, default=str))
            for r in rows
        ]
    assert texts, "no XCom was written"
    assert find_ssns(texts, ssns) == []


def test_error_files_mask_ssns() -> None:
    ssns = _seeded_ssns()
    staging = Path(os.environ["AIRFLOW__BENEFITS_HUB__STAGING_URL"].removeprefix("file://"))
    error_files = sorted(staging.rglob("error_file.csv")) + sorted(staging.rglob("errors/*.csv"))
    assert error_files, "no error file was written"
    assert find_ssns(read_texts(error_files), ssns) == []
