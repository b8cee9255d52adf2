"""For every integration: the Run Summary's counts equal its error file, as a clerk would check them.

``error_rows`` is the number of rows in the error file (a row per problem), ``errors`` the number of
distinct records in it (a record with two wrong fields is one error record with two rows). Each run
here has errors of its own kind; the file read is the one the summary lists (the merged error file).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import RunOutcome, run_dag
from tests.e2e.test_deductions_import import CURRENT_YEAR_INITIAL
from tests.e2e.test_ijoin import PLANS

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]


def assert_counts_match_the_error_file(outcome: RunOutcome) -> None:
    summary = outcome.summary
    assert summary is not None and summary["errors"] > 0, summary
    rows = outcome.error_rows()
    assert summary["error_rows"] == len(rows)
    assert summary["errors"] == len({row["record_key"] for row in rows})
    assert all(row["reason"].strip() for row in rows)  # every row says why


def test_demographic_export(sandbox: Any, plansource_admin: Any) -> None:
    before = plansource_admin.stats()
    outcome = run_dag("plansource_hcm_demographic_export", {"delta": False})
    assert_counts_match_the_error_file(outcome)
    # ... and with what PlanSource received.
    after, summary = plansource_admin.stats(), outcome.summary
    assert after["creates"] - before["creates"] == summary["records_created"]
    changed = (after["updates"] - before["updates"], after["terminations"] - before["terminations"])
    assert summary["records_updated"] == sum(changed), (summary, changed)


def test_deductions_import(sandbox: Any) -> None:
    import sqlite3

    outcome = run_dag("plansource_deductions_import", {"delta": True, **CURRENT_YEAR_INITIAL})
    assert_counts_match_the_error_file(outcome)
    # ... and with what the HCM holds from this run.
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        loaded = conn.execute(
            "SELECT COUNT(*) FROM hcm_payroll_deduction WHERE load_run_id = ?", (outcome.run_id,)
        ).fetchone()[0]
    assert loaded == outcome.summary["records_created"] + outcome.summary["records_updated"]


def test_plan_sync_failed_plans(sandbox: Any) -> None:
    assert_counts_match_the_error_file(run_dag("ijoin_plan_sync", {}))


def test_participant_sync_a_failed_plan_is_an_error_row_too(sandbox: Any) -> None:
    new_plan = PLANS["new_plan"]  # being set up in iJoin, no plan data yet: its participants cannot sync
    outcome = run_dag("ijoin_participant_sync", {"plan_ids": f"P0001,{new_plan}"})
    assert_counts_match_the_error_file(outcome)
    assert any(row["record_key"] == new_plan for row in outcome.error_rows())
    # ... and with what iJoin holds: every participant created is there.
    import sqlite3

    with sqlite3.connect(sandbox.ijoin_state_path) as conn:
        held = conn.execute("SELECT COUNT(*) FROM ij_participant WHERE plan_id = 'P0001'").fetchone()[0]
    assert held == outcome.summary["records_created"] > 0
