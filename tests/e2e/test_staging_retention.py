"""The staging retention DAG on real staged runs: what is past the retention and settled goes; a run
still going, a recent run and the hub's own state stay."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import run_dag

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
EXPORT = "plansource_hcm_demographic_export"
IMPORT = "plansource_deductions_import"
RETENTION = "hub_staging_retention"


def _age(folder: Path, days: float) -> None:
    """Make every file under ``folder`` look last written ``days`` ago."""
    stamp = time.time() - days * 86400
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (stamp, stamp))


def _folder(staging: Path, dag_id: str, run_id: str) -> Path:
    from benefits_hub.staging import StagingArea

    return Path(str(StagingArea(dag_id, run_id).root.path))


@pytest.fixture
def own_staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A staging store of this test's own: the retention must not touch other tests' files."""
    staging = tmp_path / "staging"
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__STAGING_URL", staging.as_uri())
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__STAGING_RETENTION_DAYS", "30")
    return staging


@pytest.fixture
def running_import_run(airflow_db: None) -> Any:
    """A deductions import run that Airflow holds as running (as one waiting on a slow vendor would be)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    run_id = f"manual__{datetime.now(UTC).isoformat()}"
    with create_session() as session:
        session.add(
            DagRun(
                dag_id=IMPORT,
                run_id=run_id,
                run_type=DagRunType.MANUAL,
                state=DagRunState.RUNNING,
                run_after=datetime.now(UTC) - timedelta(days=45),
                start_date=datetime.now(UTC) - timedelta(days=45),
            )
        )
    try:
        yield run_id
    finally:
        with create_session() as session:
            session.query(DagRun).filter_by(dag_id=IMPORT, run_id=run_id).delete()


def test_retention_deletes_settled_runs_past_the_retention_only(
    sandbox: Any, own_staging: Path, running_import_run: str
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from benefits_hub.staging import RUN_MARKER, StagingArea

    # Two real export runs (narrowed: two people each, so the runs are quick), staged as the stages do.
    old = run_dag(EXPORT, {"delta": False, "include_employees": "E000010,E000011"})
    recent = run_dag(EXPORT, {"delta": False, "include_employees": "E000012"})
    old_folder = _folder(own_staging, EXPORT, old.run_id)
    recent_folder = _folder(own_staging, EXPORT, recent.run_id)
    assert (old_folder / "source" / "hcm_employees.jsonl").exists()  # PII, staged by the run itself
    # The folder names the Airflow run that owns it (the task wrote it from its own context).
    assert json.loads((old_folder / RUN_MARKER).read_text()) == {"dag_id": EXPORT, "run_id": old.run_id}
    # A run still going, whose files were written long ago.
    going = StagingArea(IMPORT, running_import_run)
    with going.records("source/payroll_coverages.pages.jsonl") as writer:
        writer.write({"payroll_coverages": []})
    going_folder = Path(str(going.root.path))
    state_folder = own_staging / "_state"
    assert list((state_folder / EXPORT / "delivered_fingerprints.changes").iterdir())  # narrowed runs' state

    for folder in (old_folder, going_folder, state_folder):
        _age(folder, days=45)
    _age(recent_folder, days=29)

    outcome = run_dag(RETENTION)

    assert outcome.state == "success", outcome.task_states
    assert not old_folder.exists()
    assert recent_folder.exists() and (recent_folder / "run_manifest.json").exists()
    assert (going_folder / "source" / "payroll_coverages.pages.jsonl").exists()
    assert list((state_folder / EXPORT / "delivered_fingerprints.changes").iterdir())  # narrowed runs' state
    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(
                dag_id=RETENTION, run_id=outcome.run_id, task_id="purge_expired_staging", key="return_value"
            )
            .one()
        )
        report = row.value if isinstance(row.value, dict) else json.loads(row.value)
    assert report == {"retention_days": 30, "runs_seen": 3, "deleted": 1, "kept_in_flight": 1}

    # Once the run is over, its folder goes at the next pass; a second pass finds nothing more.
    from airflow.models.dagrun import DagRun

    with create_session() as session:
        session.query(DagRun).filter_by(dag_id=IMPORT, run_id=running_import_run).update({"state": "failed"})
    assert run_dag(RETENTION).state == "success"
    assert not going_folder.exists() and recent_folder.exists() and state_folder.exists()


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A real 2 MB filesystem (tmpfs) for the staging area: the kernel says ENOSPC when it is full."""
    import subprocess

    mount = tmp_path / "staging"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_staging_disk_fails_the_stage_in_words_and_loses_nothing(
    sandbox: Any, plansource_admin: Any, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__STAGING_URL", small_disk.as_uri())
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (2 * 1024 * 1024 - 48 * 1024))  # leaves 48 KB: less than one extract
    before = plansource_admin.stats()

    full = run_dag(EXPORT, {"delta": False})

    assert full.state == "failed" and full.task_states["extract"] == "failed"
    reason = full.summary["failure_reason"] if full.summary else ""
    assert reason.startswith("The staging area is full: no space left for "), reason
    assert str(small_disk) in reason and "MB" in reason and "Errno" not in reason
    after = plansource_admin.stats()
    assert (after["creates"], after["updates"]) == (before["creates"], before["updates"])  # nothing sent
    assert not [p for p in small_disk.rglob("*.jsonl") if p.stat().st_size]  # no half file left

    filler.unlink()  # space freed: the same run again delivers everything, once
    again = run_dag(EXPORT, {"delta": False})
    assert again.summary["status"] == "Completed with Errors"
    assert again.summary["records_created"] == 1
