"""After every DAG run of the suite: no seeded SSN or full birth date in any task log, XCom value (Run
Summaries, stage manifests, failure messages) or error file, and none of the sandbox's credentials nor
any private key in a task log or XCom.

Runs last in the whole suite (tests/conftest.py moves it there), so it reads what every other test left.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hub_sandbox.server import CLIENT_SECRET, IJOIN_API_KEY, SFTP_PASSWORD
from tests.e2e.conftest import BIRTH_DATE_LOG, SSN_LOG, TASK_LOG_DIR
from tests.e2e.pii_scan import find_birth_dates, find_secrets, find_ssns, read_texts

# The sandbox's demo credentials: public, but a log holding them would hold a real vendor's just the same.
SECRETS = {
    "PlanSource client secret": CLIENT_SECRET,
    "SFTP password": SFTP_PASSWORD,
    "iJoin API key": IJOIN_API_KEY,
    "a PGP private key": "-----BEGIN PGP PRIVATE KEY BLOCK-----",
    "an SSH private key": "PRIVATE KEY-----",
}

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


def _seeded_birth_dates() -> set[str]:
    if not BIRTH_DATE_LOG.exists():
        pytest.skip("no end-to-end run in this session: run it with the e2e tests")
    return {line.strip() for line in BIRTH_DATE_LOG.read_text().splitlines() if line.strip()}


def _task_logs() -> list[tuple[str, str]]:
    logs = sorted(TASK_LOG_DIR.rglob("*.log"))
    assert logs, "the end-to-end tests wrote no task logs"
    return list(read_texts(logs))


def _xcom_texts() -> list[tuple[str, str]]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return [
            (f"xcom {r.dag_id}/{r.run_id}/{r.task_id}/{r.key}", json.dumps(r.value, default=str))
            for r in session.query(XComModel).all()
        ]


def test_scanners_find_a_planted_birth_date_and_secret(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_text(
        "window 2026-06-01 -> 2026-06-02, run at 2026-06-02T10:00:00+00:00\n"
        "record E000001 born 1965/08/30 rejected; also 08/30/1965 and 1965-08-30\n"
        f"connecting with {SFTP_PASSWORD}\n"
    )
    texts = list(read_texts([log]))
    assert find_birth_dates(texts, ["1965-08-30", "2026-06-01x"]) == [(str(log), "1965-**-**")] * 3
    assert find_birth_dates(texts, ["2004-06-03"]) == []
    assert find_secrets(texts, SECRETS) == [(str(log), "SFTP password")]


def test_no_birth_date_in_any_task_log_or_xcom() -> None:
    birth_dates = _seeded_birth_dates()
    assert len(birth_dates) > 100
    assert find_birth_dates(_task_logs(), birth_dates) == []
    assert find_birth_dates(_xcom_texts(), birth_dates) == []


def test_error_files_mask_birth_dates() -> None:
    birth_dates = _seeded_birth_dates()
    staging = Path(os.environ["AIRFLOW__BENEFITS_HUB__STAGING_URL"].removeprefix("file://"))
    error_files = sorted(staging.rglob("error_file.csv")) + sorted(staging.rglob("errors/*.csv"))
    assert error_files, "no error file was written"
    assert find_birth_dates(read_texts(error_files), birth_dates) == []


def test_no_credential_or_private_key_in_any_task_log_or_xcom() -> None:
    _seeded_ssns()  # only after a session that ran DAGs
    assert find_secrets(_task_logs(), SECRETS) == []
    assert find_secrets(_xcom_texts(), SECRETS) == []
