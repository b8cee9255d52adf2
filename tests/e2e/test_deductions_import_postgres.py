"""The Deductions Import with the HCM on a real PostgreSQL server: the same runs as on SQLite, the same
rows loaded (NUMERIC, DATE and TIMESTAMP columns, ON CONFLICT upserts through psycopg)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import run_dag
from tests.e2e.test_deductions_import import (
    CURRENT_YEAR_INITIAL,
    FAILING,
    IMPORT,
    RESUBMIT,
    change_coverages,
    plansource_coverages,
)
from tests.e2e.test_demographic_export_postgres import pg_hcm  # noqa: F401 - the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]


def pg_deductions(dsn: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    import psycopg2
    import psycopg2.extras

    with psycopg2.connect(dsn) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
        cursor.execute("SELECT * FROM hcm_payroll_deduction")
        rows = cursor.fetchall()
    return {(r["person_number"], r["deduction_code"], str(r["effective_date"])): dict(r) for r in rows}


def test_initial_import_delta_and_rerun_on_postgres(sandbox: Any, pg_hcm: str) -> None:  # noqa: F811
    initial = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    good = [
        c
        for c in plansource_coverages(sandbox, "plan_year = 2026 AND test_employee = 0")
        if c["id"] not in FAILING.values()
    ]
    assert initial.summary["status"] == "Completed with Errors"
    assert initial.summary["records_created"] == len(good)
    loaded = pg_deductions(pg_hcm)
    assert {row["plansource_coverage_id"] for row in loaded.values()} == {c["id"] for c in good}
    sample = next(c for c in good if c["id"] == min(c["id"] for c in good))
    row = next(r for r in loaded.values() if r["plansource_coverage_id"] == sample["id"])
    assert str(row["employee_amount"]) == sample["subscriber_premium"]  # NUMERIC, exact

    target = next(c for c in good if c["current"] and not c["termination_date"])
    change_coverages(sandbox, [{"id": target["id"], "subscriber_premium": "77.77"}])
    nightly = run_dag(IMPORT, {"delta": True, "lookback_days": 1})
    assert nightly.summary["status"] == "Completed"
    assert nightly.summary["records_updated"] == 1
    rerun = run_dag(IMPORT, {"delta": True, "lookback_days": 1})
    assert rerun.summary["records_updated"] == 0 and rerun.summary["records_created"] == 0
    after = pg_deductions(pg_hcm)
    assert len(after) == len(loaded)
    assert str(
        next(r for r in after.values() if r["plansource_coverage_id"] == target["id"])["employee_amount"]
    ) == ("77.77")


def test_resubmit_on_postgres(sandbox: Any, pg_hcm: str) -> None:  # noqa: F811
    original = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    keys = {row["record_key"].split("#")[1]: row["record_key"] for row in original.error_rows()}
    fixed = run_dag(
        RESUBMIT,
        {
            "integration_reference_id": original.run_id,
            "corrections": {keys[FAILING["unmapped_code"]]: {"plan_payroll_mapping_code": "MED-PPO"}},
        },
    )
    assert fixed.summary["records_created"] == 1
    assert any(
        r["plansource_coverage_id"] == FAILING["unmapped_code"] for r in pg_deductions(pg_hcm).values()
    )
