"""The Deductions Import against an HCM that goes away for a while (its volume unmounted) and then is
locked by another connection's open write transaction while the import delivers. Each fault costs a
retry with the DAG's backoff; afterwards the HCM's payroll deductions equal, key for key and value for
value, what PlanSource's own records say they must be. A cleared and re-run deliver writes nothing."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from hub_sandbox.coverages import special_coverages
from tests.faults.harness import (
    LogWatcher,
    backoff_gaps,
    differing_keys,
    duplicate_count,
    expected_deductions,
    hcm_deductions,
    new_log_path,
    resume_run,
    run_dag,
    running_sandbox,
    set_connection,
    tries_of,
)

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("clean_hub_state")]
DAG_ID = "plansource_deductions_import"
INTEGRATION = "Deductions Import"
EMPLOYEES = 200
INITIAL_IMPORT = {"deduction_start_date": "2025-10-01", "plan_year_start_date": "2025-12-31"}
FAILING_COVERAGES = len(special_coverages(EMPLOYEES))  # unknown employee, unmapped code, negative, dates


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_sandbox(tmp_path_factory.mktemp("hcm-faults"), EMPLOYEES) as box:
        yield box


@pytest.fixture
def hcm_volume(sandbox: Any, tmp_path: Path) -> Path:
    """The HCM database on a volume of its own, which the test can unmount (rename away)."""
    volume = tmp_path / "hcm-volume"
    volume.mkdir()
    shutil.copy2(sandbox.hcm_db_path, volume / "hcm.sqlite")
    set_connection("hcm_db", host=str(volume / "hcm.sqlite"))
    return volume / "hcm.sqlite"


def test_import_waits_out_an_unavailable_then_locked_hcm_and_loads_each_deduction_once(
    sandbox: Any, hcm_volume: Path, fault_report: Any
) -> None:
    volume = hcm_volume.parent
    unmounted = volume.with_name("hcm-volume.unmounted")
    volume.rename(unmounted)  # the HCM is unavailable when the run starts
    lock: dict[str, sqlite3.Connection] = {}

    def remount_and_lock() -> None:
        unmounted.rename(volume)
        # Another connection opens a write transaction on the HCM and keeps it open: the import may
        # read, but cannot write until it ends.
        holder = sqlite3.connect(hcm_volume, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE hcm_person SET city = city WHERE person_number = 'E000013'")
        lock["holder"] = holder

    def unlock() -> None:
        lock["holder"].execute("ROLLBACK")
        lock["holder"].close()

    log_path = new_log_path(DAG_ID, "hcm")
    watcher = LogWatcher(
        log_path,
        [
            (r"unable to open database file", remount_and_lock),  # validate's first try failed
            (r"deliver stage of run", lambda: None),
            (r"database is locked", unlock),  # deliver's first try failed
        ],
    )
    watcher.start()
    try:
        first = run_dag(DAG_ID, {"delta": True, **INITIAL_IMPORT}, log_path=log_path)
    finally:
        done = watcher.finish()
        if "holder" in lock and len(done) < 3:
            unlock()
        if unmounted.exists():
            unmounted.rename(volume)
    assert len(done) == 3, f"faults injected: {done}"

    summary = first.summary
    assert summary is not None and summary["status"] == "Completed with Errors", summary
    assert summary["errors"] == FAILING_COVERAGES
    assert first.tries["validate"] == ("success", 2)  # try 1: the HCM was not there
    assert first.tries["deliver"] == ("success", 2)  # try 1: the HCM was locked
    for task_id in ("validate", "deliver"):
        for waited, least in backoff_gaps(tries_of(DAG_ID, first.run_id, task_id)):
            assert waited >= least - 0.05, (task_id, waited, least)

    today = datetime.now(UTC).date()
    expected = expected_deductions(
        sandbox.plansource_state_path, hcm_volume, date(2025, 10, 1), today, date(2026, 1, 1)
    )
    found, keys, loads = hcm_deductions(hcm_volume)
    assert expected and differing_keys(found, expected) == []
    assert duplicate_count(keys) == 0
    assert summary["records_created"] == len(expected)

    # -- deliver cleared and run again: the journal replays every chunk, the HCM is not written -------
    again = resume_run(DAG_ID, first.run_id, clear=("deliver", "summary"))
    assert again.tries["deliver"] == ("success", 3)
    assert again.summary is not None
    # This attempt wrote nothing: every record is reported as delivered by the earlier attempt.
    assert again.summary["records_created"] == again.summary["records_updated"] == 0
    assert again.summary["already_delivered"] == summary["records_created"] + summary["records_updated"]
    for counter in ("records_skipped", "errors"):
        assert again.summary[counter] == summary[counter], counter
    assert "already delivered by an earlier attempt" in again.log()
    found_again, keys_again, loads_again = hcm_deductions(hcm_volume)
    assert found_again == found and loads_again == loads  # not one row rewritten (loaded_at, run id)

    for fault, status, exactly_once in (
        ("HCM database unavailable (volume unmounted)", "validate failed once, retried after 1 s", False),
        ("HCM locked by another connection's write transaction during deliver",
         "deliver waited 5 s (SQLite busy timeout), failed once, retried", False),
        ("deliver cleared and re-run", "every chunk replayed from the journal; no row rewritten", True),
    ):  # fmt: skip
        fault_report.add(
            fault, INTEGRATION, f"{status}; {summary['status']} ({FAILING_COVERAGES} seeded bad records)",
            len(expected), len(found_again), duplicate_count(keys_again), exactly_once=exactly_once,
        )  # fmt: skip
