"""After every DAG run of the suite: no seeded SSN or full birth date in any task log, XCom value (Run
Summaries, stage manifests, failure messages) or error file, and none of the sandbox's credentials nor
any private key in a task log or XCom.

Runs last in the whole suite (tests/conftest.py moves it there), so it reads what every other test left.
``make test`` runs the suite on parallel workers, each with an Airflow home of its own, then this module
alone: it reads every home the workers listed in ``HUB_TEST_HOMES_FILE`` (``pii_scan.test_homes``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hub_sandbox.server import CLIENT_SECRET, IJOIN_API_KEY, SFTP_PASSWORD
from tests.e2e.pii_scan import find_birth_dates, find_secrets, find_ssns, read_texts, test_homes

# The sandbox's demo credentials: public, but a log holding them would hold a real vendor's just the same.
SECRETS = {
    "PlanSource client secret": CLIENT_SECRET,
    "SFTP password": SFTP_PASSWORD,
    "iJoin API key": IJOIN_API_KEY,
    "a PGP private key": "-----BEGIN PGP PRIVATE KEY BLOCK-----",
    "an SSH private key": "PRIVATE KEY-----",
}

pytestmark = pytest.mark.e2e


def _seeded(name: str) -> set[str]:
    """The values the sandboxes were seeded with (``seeded_ssns.txt``… in each home)."""
    files = [home / name for home in test_homes() if (home / name).exists()]
    if not files:
        pytest.skip("no end-to-end run in this session: run it with the e2e tests")
    return {line.strip() for f in files for line in f.read_text().splitlines() if line.strip()}


def _seeded_ssns() -> set[str]:
    return _seeded("seeded_ssns.txt")


def _seeded_birth_dates() -> set[str]:
    return _seeded("seeded_birth_dates.txt")


def _task_logs() -> list[tuple[str, str]]:
    # dag.test() runs log under logs/e2e; a whole Airflow's tasks under logs/dag_id=… (with triggers').
    logs = sorted(
        path
        for home in test_homes()
        for pattern in ("e2e/**/*.log", "dag_id=*/**/*.log*")
        for path in (home / "logs").glob(pattern)
    )
    assert logs, "the end-to-end tests wrote no task logs"
    assert sum(p.stat().st_size for p in logs) > 10_000, "task logs are suspiciously small"
    return list(read_texts(logs))


def _xcom_texts() -> list[tuple[str, str]]:
    """Every XCom value in every home's metadata DB, as stored (JSON text)."""
    texts = []
    for home in test_homes():
        if not (home / "airflow.db").exists():
            continue
        with sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT dag_id, run_id, task_id, key, value FROM xcom").fetchall()
        for dag_id, run_id, task_id, key, value in rows:
            text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            texts.append((f"xcom {dag_id}/{run_id}/{task_id}/{key}", text))
    assert texts, "no XCom was written"
    return texts


def _error_files() -> list[Path]:
    files = [
        path
        for home in test_homes()
        for pattern in ("error_file.csv", "errors/*.csv")
        for path in sorted((home / "staging").rglob(pattern))
    ]
    assert files, "no error file was written"
    return files


def test_scanner_finds_a_planted_ssn(tmp_path: Path) -> None:
    """The scan below is only worth something if it can fail."""
    log = tmp_path / "task.log"
    log.write_text("employee E000012 ssn=180-01-7851 rejected\nid 1800178519 is a longer number\n")
    hits = find_ssns(read_texts([log]), ["180017851"])
    assert hits == [(str(log), "***-**-7851")]
    # Every form, and a malformed seeded SSN (8 digits) as it was seeded; never a part of a longer number.
    log.write_text("a 180 01 7851 b 180017851 c 18001785 d x180-01-78512 e 2180017851\n")
    hits = find_ssns(read_texts([log]), ["180-01-7851", "18001785"])
    assert [masked for _where, masked in hits] == ["***-**-7851", "***-**-7851", "***-**-1785"]


def test_no_ssn_in_any_task_log() -> None:
    assert find_ssns(_task_logs(), _seeded_ssns()) == []


def test_no_ssn_in_any_xcom() -> None:
    assert find_ssns(_xcom_texts(), _seeded_ssns()) == []


def test_error_files_mask_ssns() -> None:
    assert find_ssns(read_texts(_error_files()), _seeded_ssns()) == []


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
    assert find_birth_dates(read_texts(_error_files()), _seeded_birth_dates()) == []


def test_no_credential_or_private_key_in_any_task_log_or_xcom() -> None:
    _seeded_ssns()  # only after a session that ran DAGs
    assert find_secrets(_task_logs(), SECRETS) == []
    assert find_secrets(_xcom_texts(), SECRETS) == []
