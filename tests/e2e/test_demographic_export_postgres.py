"""The HCM Demographic Export with the HCM on a real PostgreSQL server (what production runs).

The sandbox seeds its SQLite HCM as usual; each test copies it into a fresh PostgreSQL database and
points ``hcm_db`` there, so ``HcmHook`` runs through ``PostgresHook`` (server-side named cursor, ``%s``
placeholders, TIMESTAMP parameters). PlanSource and SFTP stay the sandbox's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from hub_sandbox.postgres import copy_hcm_to_postgres, touch_employees_pg
from tests.e2e.conftest import run_dag
from tests.e2e.test_demographic_export import BAD, DAG_ID, GOOD, NEW_HIRE, changes_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]


@pytest.fixture
def pg_hcm(sandbox: Any, postgres_server: Any, monkeypatch: pytest.MonkeyPatch, request: Any) -> str:
    """The sandbox's seeded HCM, copied into a fresh PostgreSQL database that ``hcm_db`` points at."""
    dbname = f"hcm_{request.node.name}"[:63].lower()
    dsn = postgres_server.create_database(dbname)
    copy_hcm_to_postgres(sandbox.hcm_db_path, dsn)
    monkeypatch.setenv("AIRFLOW_CONN_HCM_DB", postgres_server.connection_json(dbname))
    return dsn


def test_hcm_hook_reads_postgres(pg_hcm: str) -> None:
    from benefits_hub.hooks.hcm import HcmHook

    hook = HcmHook()
    assert hook.dialect == "postgres"
    assert hook.test_connection() == (True, "Connection successfully tested")
    assert len(list(hook.iter_primary_employees())) == 200
    assert hook.known_person_numbers([GOOD[0], "E999999"]) == {GOOD[0]}


def test_copy_is_complete_and_idempotent(sandbox: Any, pg_hcm: str) -> None:
    import sqlite3

    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        expected = {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("hcm_person", "hcm_employment", "hcm_payroll_deduction")
        }
    assert copy_hcm_to_postgres(sandbox.hcm_db_path, pg_hcm) == expected  # again: replaces, no duplicates


def test_full_run_on_postgres_ends_completed_with_errors(pg_hcm: str, plansource_admin: Any) -> None:
    assert plansource_admin.subscriber(NEW_HIRE) is None

    outcome = run_dag(DAG_ID, {"delta": False})

    assert outcome.state == "failed"
    assert outcome.task_states["deliver"] == "success"
    summary = outcome.summary
    assert summary is not None and summary["status"] == "Completed with Errors"
    assert summary["records_processed"] == 200
    assert summary["errors"] == len(BAD) == 5
    assert summary["records_created"] == 1
    assert {row["record_key"] for row in outcome.error_rows()} == set(BAD.values())
    assert plansource_admin.subscriber(NEW_HIRE) is not None


def test_delta_on_postgres_sends_only_employees_changed_there(
    sandbox: Any, pg_hcm: str, plansource_admin: Any
) -> None:
    changed = GOOD[:3]
    # Only the PostgreSQL HCM is edited: a run reading the SQLite file would find no changes.
    assert touch_employees_pg(pg_hcm, changed, datetime.now(UTC), {"city": "Springfield Heights"}) == 3
    time.sleep(1.05)  # the window ends before the second its run starts in (see test_demographic_export)

    outcome = run_dag(DAG_ID, {"delta": True, "lookback_days": 1})

    summary = outcome.summary
    assert outcome.state == "success", summary
    assert summary["status"] == "Completed"
    assert summary["records_processed"] == 3
    assert summary["records_updated"] == 3
    assert summary["records_created"] == 0
    for number in changed:
        [change] = changes_for(sandbox, number)
        assert change["changed_fields"] == ["city"]
        assert plansource_admin.subscriber(number)["city"] == "Springfield Heights"
    assert changes_for(sandbox, GOOD[3]) == []


def test_a_change_committed_while_a_run_reads_is_sent_by_the_next_run(
    sandbox: Any, pg_hcm: str, plansource_admin: Any
) -> None:
    """PostgreSQL stamps the change with its transaction's start (``now()``), before the reading run
    ends; it becomes visible only at commit, after that run. The next window starts an overlap before
    the last run's end, so it reads the change; the fingerprints keep the overlap from resending."""
    import psycopg2

    number = GOOD[0]
    run_dag(DAG_ID, {"delta": True})  # a first successful full-scope delta sets the watermark
    writer = psycopg2.connect(pg_hcm)
    try:
        with writer.cursor() as cur:  # open, not committed, while the next run reads
            cur.execute(
                "UPDATE hcm_person SET city = 'Late Commit City', updated_at = now() AT TIME ZONE 'UTC'"
                " WHERE person_number = %s",
                (number,),
            )
        time.sleep(1.05)
        during = run_dag(DAG_ID, {"delta": True})
        assert during.state == "success" and changes_for(sandbox, number) == []
        writer.commit()
    finally:
        writer.close()
    time.sleep(1.05)

    after = run_dag(DAG_ID, {"delta": True})

    assert after.state == "success", after.summary
    assert [c["changed_fields"] for c in changes_for(sandbox, number)] == [["city"]]
    assert plansource_admin.subscriber(number)["city"] == "Late Commit City"
    # With nothing changed since, the overlapping window reads it again and sends nothing.
    again = run_dag(DAG_ID, {"delta": True})
    assert again.summary["records_created"] == again.summary["records_updated"] == 0
    assert len(changes_for(sandbox, number)) == 1
