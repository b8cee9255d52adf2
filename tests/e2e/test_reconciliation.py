"""Hub reconciliation, run for real (dag.test) against the sandbox: discrepancies planted by direct
edits to the stand-ins' stores are found, exactly, and the repairable ones are gone after a repair."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub_sandbox.generator import touch_employees
from tests.e2e.conftest import run_dag, started_sandbox
from tests.e2e.test_demographic_export import GOOD, NEW_HIRE

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
RECONCILE, EXPORT, IMPORT = (
    "hub_reconciliation",
    "plansource_hcm_demographic_export",
    "plansource_deductions_import",
)
STRAY = "E999990"


def discrepancies(outcome: Any) -> set[tuple[str, str, str]]:
    """(kind, employee, field) of each discrepancy in the run's file."""
    path = Path(outcome.summary["output_file"].removeprefix("file://"))
    with path.open(newline="") as handle:
        return {(r["kind"], r["record_key"], r["field"]) for r in csv.DictReader(handle)}


def plansource(sandbox: Any, sql: str, *args: Any) -> None:
    with sqlite3.connect(sandbox.plansource_state_path) as conn:
        conn.execute(sql, args)


def copy_subscriber(sandbox: Any, source: str, number: str) -> None:
    """A subscriber PlanSource holds that the HCM does not: a copy of another under a new number."""
    with sqlite3.connect(sandbox.plansource_state_path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(subscriber)") if row[1] != "seq"]
        picked = [
            {"id": "'PSSTRAY'", "public_id": "'PUBSTRAY'", "employee_number": f"'{number}'"}.get(c, c)
            for c in columns
        ]
        conn.execute(
            f"INSERT INTO subscriber ({', '.join(columns)}) SELECT {', '.join(picked)} FROM subscriber "
            "WHERE employee_number = ?",
            (source,),
        )


@pytest.fixture
def population(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A sandbox of 1,000 employees: enough people in step for a false positive to show."""
    with started_sandbox(tmp_path_factory, monkeypatch, employees=1000) as box:
        yield box


def test_finds_exactly_the_planted_discrepancies_and_a_repair_clears_them(population: Any) -> None:
    sandbox = population
    export = run_dag(EXPORT, {"delta": False})
    refused = {row["record_key"] for row in export.error_rows()}
    baseline = run_dag(RECONCILE, {})
    assert baseline.summary["status"] == "Completed", baseline.summary
    # In step after a full export: the only discrepancies are the employees the export itself refused.
    assert {number for _kind, number, _field in discrepancies(baseline)} == refused
    assert baseline.summary["employees_compared"] >= 1000

    plansource(sandbox, "DELETE FROM subscriber WHERE employee_number = ?", NEW_HIRE)
    copy_subscriber(sandbox, GOOD[5], STRAY)
    plansource(
        sandbox,
        "UPDATE subscriber SET subscriber_status = 'Terminated', termination_date = '2026-10-31' "
        "WHERE employee_number = ?",
        GOOD[1],
    )
    plansource(sandbox, "UPDATE subscriber SET city = 'Ogdenville' WHERE employee_number = ?", GOOD[3])
    plansource(sandbox, "UPDATE subscriber SET ssn = '987654320' WHERE employee_number = ?", GOOD[4])
    touch_employees(
        sandbox.hcm_db_path, [GOOD[2]], datetime.now(UTC),
        {"employee_status_code": "T", "termination_date": "2026-11-20", "termination_reason_code": "RESIGN"},
    )  # fmt: skip
    planted = {
        ("missing_in_plansource", NEW_HIRE, ""),
        ("in_plansource_not_in_hcm", STRAY, ""),
        ("active_in_hcm_terminated_in_plansource", GOOD[1], "termination_date"),
        ("terminated_in_hcm_active_in_plansource", GOOD[2], "termination_date"),
        ("field_differs", GOOD[3], "city"),
        ("identity_differs", GOOD[4], "ssn"),
    }

    found = run_dag(RECONCILE, {})
    assert discrepancies(found) - discrepancies(baseline) == planted
    assert discrepancies(baseline) <= discrepancies(found)
    summary = found.summary
    assert summary["hcm_plansource_demographics__field_differs"] == 1
    assert summary["discrepancies"] == len(discrepancies(found))
    assert any("discrepancy(ies) (" in w and "A field differs: 1" in w for w in summary["warnings"])
    with Path(summary["output_file"].removeprefix("file://")).open(newline="") as handle:
        rows = {(r["kind"], r["record_key"]): r for r in csv.DictReader(handle)}
    assert rows[("identity_differs", GOOD[4])]["hcm_value"].startswith("***-**-")
    assert rows[("in_plansource_not_in_hcm", STRAY)]["repair"] == "none"

    # Repair: the export for exactly the repairable people; the next reconciliation no longer lists them.
    repairable = sorted({number for _k, number, _f in planted} - {STRAY, GOOD[4]})
    run_dag(EXPORT, {"delta": False, "include_employees": ",".join(repairable)})
    after = run_dag(RECONCILE, {})
    assert discrepancies(after) - discrepancies(baseline) == {
        ("in_plansource_not_in_hcm", STRAY, ""),
        ("identity_differs", GOOD[4], "ssn"),
    }


def test_include_employees_narrows_the_comparison(sandbox: Any) -> None:
    run_dag(EXPORT, {"delta": False})
    plansource(sandbox, "UPDATE subscriber SET city = 'Ogdenville' WHERE employee_number = ?", GOOD[3])
    narrowed = run_dag(RECONCILE, {"include_employees": f"{GOOD[3]},{GOOD[4]}"})
    assert narrowed.summary["employees_compared"] == 2
    assert discrepancies(narrowed) == {("field_differs", GOOD[3], "city")}
    with pytest.raises(Exception, match="param pairs"):  # refused when triggered, naming the param
        run_dag(RECONCILE, {"pairs": "hcm_payroll"})


COVERAGES = "plansource_hcm_deductions"


def hcm(sandbox: Any, sql: str, *args: Any) -> None:
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        conn.execute(sql, args)


def test_coverages_and_payroll_finds_exactly_the_planted_discrepancies_and_the_import_repairs_them(
    sandbox: Any,
) -> None:
    from tests.e2e.test_deductions_import import CURRENT_YEAR_INITIAL, deductions, plansource_coverages

    initial = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    refused = {row["record_key"].replace("#", " ") for row in initial.error_rows()}
    baseline = run_dag(RECONCILE, {"pairs": COVERAGES})
    assert baseline.summary["status"] == "Completed", baseline.summary
    # In step after the plan year's import: the only discrepancies are the records the import refused.
    assert {(kind, key) for kind, key, _f in discrepancies(baseline)} == {
        ("plansource_record_not_loadable", key) for key in refused
    }
    assert baseline.summary["deductions_compared"] >= 200

    loaded = sorted(deductions(sandbox).values(), key=lambda r: r["person_number"])
    one_each = list({row["person_number"]: row for row in loaded if not row["end_date"]}.values())
    gone, repriced, ended, doubled = one_each[:4]

    def label(row: dict[str, Any], code: str | None = None) -> str:
        return f"{row['person_number']} {code or row['deduction_code']} {row['effective_date']}"

    key = "person_number = ? AND deduction_code = ? AND effective_date = ?"
    hcm(sandbox, f"DELETE FROM hcm_payroll_deduction WHERE {key}", *label(gone).split())
    hcm(sandbox, f"UPDATE hcm_payroll_deduction SET employee_amount = employee_amount + 10 WHERE {key}",
        *label(repriced).split())  # fmt: skip
    hcm(
        sandbox,
        f"UPDATE hcm_payroll_deduction SET end_date = '2026-03-31' WHERE {key}",
        *label(ended).split(),
    )
    tester = plansource_coverages(sandbox, "plan_year = 2026 AND test_employee = 1")[0]["subscriber_code"]
    columns = [c for c in doubled if c != "id"]
    for person, code in ((doubled["person_number"], "XTRA"), (tester, doubled["deduction_code"])):
        row = {**{c: doubled[c] for c in columns}, "person_number": person, "deduction_code": code}
        marks = ", ".join("?" * len(row))
        hcm(sandbox, f"INSERT INTO hcm_payroll_deduction ({', '.join(row)}) VALUES ({marks})", *row.values())
    planted = {
        ("missing_in_payroll", label(gone), "deduction_code"),
        ("amount_differs", label(repriced), "employee_amount"),
        ("date_differs", label(ended), "end_date"),
        ("in_payroll_not_in_plansource", label(doubled, "XTRA"), "deduction_code"),
        ("test_employee_loaded", f"{tester} {doubled['deduction_code']} {doubled['effective_date']}",
         "deduction_code"),
    }  # fmt: skip

    found = run_dag(RECONCILE, {"pairs": COVERAGES})
    assert discrepancies(found) - discrepancies(baseline) == planted
    # As of a day before the plan year began, no imported plan year was in effect: nothing to compare.
    before = run_dag(RECONCILE, {"pairs": COVERAGES, "as_of_date": "2025-12-15"})
    assert before.summary["discrepancies"] == 0
    assert "no plan year in effect on 2025-12-15 has been imported" in before.summary["warnings"][0]
    assert found.summary["plansource_hcm_deductions__amount_differs"] == 1

    # Repair (what the discrepancy page's Repair starts): the import, Delta off, run as the import for
    # exactly the repairable people; then only the others are left.
    people = ",".join(sorted(r["person_number"] for r in (gone, repriced, ended)))
    repair = run_dag("plansource_deductions_repair", {"include_employees": people})
    assert repair.summary["status"] == "Completed", repair.summary
    assert (repair.summary["records_created"], repair.summary["records_updated"]) == (1, 2)
    after = run_dag(RECONCILE, {"pairs": COVERAGES})
    assert discrepancies(after) - discrepancies(baseline) == {
        d for d in planted if d[0] in ("in_payroll_not_in_plansource", "test_employee_loaded")
    }
