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
DEMOGRAPHICS = {"pairs": "hcm_plansource_demographics"}


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
    baseline = run_dag(RECONCILE, DEMOGRAPHICS)
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

    found = run_dag(RECONCILE, DEMOGRAPHICS)
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
    after = run_dag(RECONCILE, DEMOGRAPHICS)
    assert discrepancies(after) - discrepancies(baseline) == {
        ("in_plansource_not_in_hcm", STRAY, ""),
        ("identity_differs", GOOD[4], "ssn"),
    }


def test_include_employees_narrows_the_comparison(sandbox: Any) -> None:
    run_dag(EXPORT, {"delta": False})
    plansource(sandbox, "UPDATE subscriber SET city = 'Ogdenville' WHERE employee_number = ?", GOOD[3])
    narrowed = run_dag(RECONCILE, {**DEMOGRAPHICS, "include_employees": f"{GOOD[3]},{GOOD[4]}"})
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


# -- recordkeeper ↔ iJoin -------------------------------------------------------------------------------
IJOIN = {"pairs": "recordkeeper_ijoin"}


def ijoin_participant(sandbox: Any, plan_id: str, stored_as: str, **changes: Any) -> None:
    """Change iJoin's stored record of a participant (as a change made in iJoin would)."""
    import json

    with sqlite3.connect(sandbox.ijoin_state_path) as conn:
        (body,) = conn.execute(
            "SELECT body FROM ij_participant WHERE plan_id = ? AND participant_id = ?",
            (plan_id, stored_as),
        ).fetchone()
        conn.execute(
            "UPDATE ij_participant SET body = ? WHERE plan_id = ? AND participant_id = ?",
            (json.dumps({**json.loads(body), **changes}), plan_id, stored_as),
        )


@pytest.fixture
def participants(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """6 plans of 170 participants: enough participants in step for a false positive to show."""
    with started_sandbox(
        tmp_path_factory, monkeypatch, employees=200, plans=6, participants_per_plan=170
    ) as box:
        yield box


def test_recordkeeper_and_ijoin_finds_exactly_the_planted_discrepancies_and_the_syncs_repair_them(
    participants: Any,
) -> None:
    import json

    import requests

    sandbox = participants
    for sync in ("ijoin_plan_sync", "ijoin_participant_sync"):
        run_dag(sync, {})
    baseline = run_dag(RECONCILE, IJOIN)
    assert baseline.summary["status"] == "Completed", baseline.summary
    assert baseline.summary["plans_compared"] == 6 and baseline.summary["participants_compared"] >= 1000
    # In step after both syncs, but for what no sync can send: a plan the Plan Sync refuses (no EIN, a
    # fund without a ticker), a new line-up waiting for its review, allocations that do not add up.
    assert {kind for kind, _key, _field in discrepancies(baseline)} == {
        "plan_not_sendable", "draft_awaiting_review", "allocations_not_sendable"
    }  # fmt: skip
    assert ("draft_awaiting_review", "P0005", "funds") in discrepancies(baseline)

    rk = sqlite3.connect(sandbox.recordkeeper_db_path)
    with rk:
        rk.execute("UPDATE rk_participant SET last_name = 'Renamed' WHERE participant_id = 'P0001-000007'")
        rk.execute("UPDATE rk_contribution_rate SET pretax_pct = 9 WHERE participant_id = 'P0001-000011'")
        # The participant's new money goes to another fund of the line-up (still 100%).
        rk.execute(
            "UPDATE rk_allocation SET fund_id = (SELECT MIN(f.fund_id) FROM rk_fund f "
            "WHERE f.plan_id = 'P0001' AND f.is_open = 1 AND f.fund_id NOT IN "
            "(SELECT a.fund_id FROM rk_allocation a WHERE a.participant_id = 'P0001-000012')) "
            "WHERE participant_id = 'P0001-000012'"
        )
        assert rk.execute(
            "SELECT COUNT(*) FROM rk_allocation WHERE participant_id = 'P0001-000012'"
        ).fetchone() == (1,)
        (closing,) = rk.execute(
            "SELECT fund_id FROM rk_fund WHERE plan_id = 'P0001' AND is_open = 1 AND is_default = 0 "
            "ORDER BY fund_id LIMIT 1"
        ).fetchone()
        rk.execute("UPDATE rk_fund SET is_open = 0 WHERE plan_id = 'P0001' AND fund_id = ?", (closing,))
    rk.close()
    with sqlite3.connect(sandbox.ijoin_state_path) as ij:
        (version_id,) = ij.execute("SELECT active_version_id FROM ij_plan WHERE plan_id = 'P0001'").fetchone()
        (body,) = ij.execute(
            "SELECT body FROM ij_plan_version WHERE version_id = ?", (version_id,)
        ).fetchone()
        ij.execute(
            "UPDATE ij_plan_version SET body = ? WHERE version_id = ?",
            (json.dumps({**json.loads(body), "employer_name": "Changed in iJoin"}), version_id),
        )
        ij.execute("DELETE FROM ij_participant WHERE participant_id = 'P0001-000008'")
        ij.execute(
            "INSERT INTO ij_participant SELECT plan_id, 'P0001-999999', body, sync_status, created_at, "
            "updated_at FROM ij_participant WHERE participant_id = 'P0001-000009'"
        )
        ij.execute("DELETE FROM ij_plan WHERE plan_id = 'P0006'")
    ijoin_participant(sandbox, "P0001", "P0001-999999", participant_id="P0001-999999")
    # An election made in iJoin (and shown in iJoin's record) that the writeback has not carried over yet.
    elected = {"pretax_pct": 11.0, "roth_pct": 0.0, "aftertax_pct": 0.0}
    election = {"plan_id": "P0002", "participant_id": "P0002-000003", "kind": "contribution_rate",
                "contribution_rates": elected}  # fmt: skip
    requests.post(f"{sandbox.ijoin_url}/sandbox/elections", json={"elections": [election]}, timeout=10)
    ijoin_participant(sandbox, "P0002", "P0002-000003", contribution_rates=elected)
    # A plan someone added in iJoin under an id the recordkeeper does not have.
    requests.post(
        f"{sandbox.ijoin_url}/sandbox/plans", json={"plan_id": "P0999"}, timeout=10
    ).raise_for_status()
    planted = {
        ("plan_field_differs", "P0001", "employer_name"),
        ("lineup_differs", "P0001", "funds"),
        ("participant_field_differs", "P0001/P0001-000007", "last_name"),
        ("participant_missing_in_ijoin", "P0001/P0001-000008", ""),
        ("participant_in_ijoin_not_in_recordkeeper", "P0001/P0001-999999", ""),
        ("contribution_rates_differ", "P0001/P0001-000011", "contribution_rates"),
        ("allocations_differ", "P0001/P0001-000012", "allocations"),
        ("election_not_written_back", "P0002/P0002-000003", "contribution_rates"),
        ("plan_missing_in_ijoin", "P0006", ""),
        ("plan_in_ijoin_not_in_recordkeeper", "P0999", ""),
    }

    found = run_dag(RECONCILE, IJOIN)
    gone_with_p0006 = {d for d in discrepancies(baseline) if d[1].startswith("P0006")}
    assert discrepancies(found) - discrepancies(baseline) == planted
    assert discrepancies(baseline) - discrepancies(found) == gone_with_p0006  # its participants: not compared
    assert found.summary["recordkeeper_ijoin__lineup_differs"] == 1
    narrowed = run_dag(RECONCILE, {**IJOIN, "plan_ids": "P0002"})
    assert narrowed.summary["plans_compared"] == 1
    assert {key.split("/")[0] for _kind, key, _field in discrepancies(narrowed)} == {"P0002"}

    # Repair (what the discrepancy page's Repair starts): each sync for exactly the plans chosen.
    plan_repair = run_dag("ijoin_plan_repair", {"plan_ids": "P0001"})
    assert plan_repair.summary["status"] == "Successful with warnings", plan_repair.summary  # a new draft
    participant_repair = run_dag("ijoin_participant_repair", {"plan_ids": "P0001"})
    # Completed with Errors: the plan's participant whose allocations do not add up is an error record.
    assert participant_repair.summary["status"] == "Completed with Errors", participant_repair.summary
    assert participant_repair.summary["records_created"] == 1  # the one iJoin lacked
    after = run_dag(RECONCILE, IJOIN)
    assert discrepancies(after) - discrepancies(baseline) == {
        # iJoin keeps the new line-up as a draft for review; the rest no sync can repair.
        ("draft_awaiting_review", "P0001", "funds"),
        ("draft_awaiting_review", "P0001", "employer_name"),  # in the same draft as the new line-up
        ("participant_in_ijoin_not_in_recordkeeper", "P0001/P0001-999999", ""),
        ("election_not_written_back", "P0002/P0002-000003", "contribution_rates"),
        ("plan_missing_in_ijoin", "P0006", ""),
        ("plan_in_ijoin_not_in_recordkeeper", "P0999", ""),
    }
    unnamed = run_dag("ijoin_plan_repair", {})  # a repair names its plans
    assert unnamed.state == "failed" and "Param 'plan_ids'" in unnamed.summary["failure_reason"]
