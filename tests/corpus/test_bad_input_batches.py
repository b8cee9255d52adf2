"""The corpus end to end: every bad record of one source (the cases marked ``batch: true``) is planted with
good records into one freshly seeded sandbox, and one real DAG run (dag.test) reads them all.

Each bad record must end as a clear error row (its field and rule, a readable reason, SSNs masked), the
good records must still arrive (compared as sets of keys), and the run must end Completed with Errors,
explained by its error rows, never by a traceback.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from benefits_hub.values import looks_like_formula
from tests.corpus.corpus import Case, load_cases, readable, with_overrides
from tests.e2e.conftest import _remember_ssns, run_dag

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
CASES = load_cases()


def batch(source: str) -> list[Case]:
    return [c for c in CASES if c.source == source and c.data.get("batch")]


def assert_clear_rows(rows: list[dict[str, str]], planted: dict[str, Case]) -> None:
    """One or more rows per bad record, the expected one among them, each a readable, masked reason."""
    by_key: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_key.setdefault(row["record_key"], []).append(row)
    assert set(by_key) == set(planted), "error rows are not exactly the planted bad records"
    for key, case in planted.items():
        expect = case.expect
        found = [r for r in by_key[key] if r["field"] == expect["field"] and r["rule"] == expect["rule"]]
        assert found, f"{case}: no {expect['field']}/{expect['rule']} row among {by_key[key]}"
        assert expect["reason"] in found[0]["reason"], f"{case}: {found[0]['reason']!r}"
        for row in by_key[key]:
            assert readable(row["reason"]), f"{case}: {row['reason']!r}"
            if row["field"] == "ssn" and row["value"]:
                assert row["value"].startswith("***-**-"), f"{case}: SSN not masked"
            if row["field"] == "birth_date" and row["value"]:
                assert row["value"] == "****-**-**", f"{case}: birth date not masked"
            # No cell a spreadsheet would run; a plain negative amount ("-12.50") stays as it is.
            assert not looks_like_formula(row["value"]), f"{case}: a formula in the error file"


# -- HCM Demographic Export ----------------------------------------------------------------------------

PERSON_COLUMNS = (
    "person_number", "first_name", "middle_name", "last_name", "ssn", "birth_date", "gender_code",
    "marital_status_code", "address_1", "address_2", "city", "state", "zip_code", "country", "home_phone",
    "work_email", "plansource_subscriber_id", "plansource_username", "updated_at",
)  # fmt: skip
EMPLOYMENT_COLUMNS = (
    "person_number", "ein", "is_primary", "employee_status_code", "employment_type_code", "pay_group_code",
    "pay_type_code", "union_code", "hire_date", "original_hire_date", "termination_date",
    "termination_reason_code", "annual_salary", "job_title", "location", "division", "updated_at",
)  # fmt: skip


def plant_employees(db: Any, people: list[tuple[dict[str, Any], int]]) -> None:
    """Insert people straight into the HCM (as a bad HCM edit would leave them); ``int`` = primary rows."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(db) as conn:
        for employee, primaries in people:
            row = {**employee, "updated_at": stamp, "is_primary": 1}
            conn.execute(
                f"INSERT INTO hcm_person ({', '.join(PERSON_COLUMNS)}) VALUES ({', '.join('?' * 19)})",
                [row.get(c) for c in PERSON_COLUMNS],
            )
            for n in range(primaries):
                values = {**row, "ein": ("12-3456789", "27-1048576", "46-2718281")[n]}
                conn.execute(
                    f"INSERT INTO hcm_employment ({', '.join(EMPLOYMENT_COLUMNS)}) VALUES "
                    f"({', '.join('?' * 17)})",
                    [values.get(c) for c in EMPLOYMENT_COLUMNS],
                )


def test_export_batch_of_bad_hcm_employees(sandbox: Any, plansource_admin: Any) -> None:
    from hub_sandbox.generator import valid_ssn

    base = CASES[[c.source for c in CASES].index("hcm_employees")].file["base"]
    bad: dict[str, Case] = {}
    good: dict[str, dict[str, Any]] = {}
    people: list[tuple[dict[str, Any], int]] = []
    for n, case in enumerate(batch("hcm_employees"), start=1):
        number = f"E9{n:05d}"
        defaults = {
            "person_number": number,
            "ssn": valid_ssn(900_000 + n),
            "work_email": f"{number}@example.com",
        }
        employee = with_overrides({**base, **defaults}, case.data.get("input"))
        people.append((employee, int(case.data.get("duplicate_rows") or 1)))
        if case.outcome == "error_row":
            bad[number] = case
        else:
            good[number] = employee
    for n in range(1, 4):  # plain good new hires travelling with the bad ones
        number = f"E98{n:04d}"
        good[number] = {
            **base,
            "person_number": number,
            "ssn": valid_ssn(980_000 + n),
            "first_name": f"Good{n}",
        }
        people.append((good[number], 1))
    plant_employees(sandbox.hcm_db_path, people)
    _remember_ssns(sandbox.hcm_db_path, sandbox.plansource_state_path)
    time.sleep(1.05)  # a window ends before the second its run starts in

    outcome = run_dag("plansource_hcm_demographic_export", {"delta": True, "lookback_days": 1})

    summary = outcome.summary
    assert summary is not None and summary["status"] == "Completed with Errors", summary
    assert outcome.task_states["deliver"] == "success"
    assert summary["errors"] == len(bad)
    assert_clear_rows(outcome.error_rows(), bad)
    # The good ones arrived, exactly as the HCM holds them (the SQL string is only a name).
    arrived = {n for n in good if plansource_admin.subscriber(n) is not None}
    assert arrived == set(good)
    assert summary["records_created"] == len(good)
    for number, employee in good.items():
        assert plansource_admin.subscriber(number)["last_name"] == employee["last_name"]
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM hcm_person").fetchone()[0] > 200  # no table dropped
    # None of the bad ones reached PlanSource.
    assert not any(plansource_admin.subscriber(n) for n in bad)


# -- Deductions Import ---------------------------------------------------------------------------------


def test_import_batch_of_bad_payroll_coverages(sandbox: Any) -> None:
    from hub_sandbox.coverages import special_coverages
    from hub_sandbox.generator import special_people

    special = {p for people in special_people(200).values() for p in people}
    ordinary = [f"E{i:06d}" for i in range(20, 200) if f"E{i:06d}" not in special]
    base = CASES[[c.source for c in CASES].index("plansource_coverages")].file["base"]
    planted: dict[str, Case] = {}
    with sqlite3.connect(sandbox.plansource_state_path) as conn:
        conn.row_factory = sqlite3.Row
        template = dict(
            conn.execute(
                "SELECT * FROM payroll_coverage WHERE plan_year = 2026 AND test_employee = 0"
            ).fetchone()
        )
        columns = [c for c in template if c != "seq"]
        for n, case in enumerate(batch("plansource_coverages"), start=1):
            coverage_id = f"PCX{n:08d}"
            record = {
                **template,
                **with_overrides(
                    {
                        **base,
                        "id": coverage_id,
                        "subscriber_code": ordinary[n],
                        # A vision deduction of its own, so no planted record shares a key with another.
                        "plan_payroll_mapping_code": "VIS",
                        "change_effective_date": f"2026-03-{n:02d}",
                        "original_effective_date": f"2026-03-{n:02d}",
                    },
                    case.data.get("input"),
                ),
                "updated_at": "2026-11-20 10:00:00",
                "plan_year": 2026,
                "current": 1,
                "test_employee": 0,
                "changed_fields": "",
            }
            marks = ", ".join("?" * len(columns))
            conn.execute(
                f"INSERT INTO payroll_coverage ({', '.join(columns)}) VALUES ({marks})",
                [record.get(c) for c in columns],
            )
            planted[coverage_id] = case

    outcome = run_dag(
        "plansource_deductions_import",
        {"delta": True, "deduction_start_date": "2025-10-01", "plan_year_start_date": "2025-12-31"},
    )

    summary = outcome.summary
    assert summary is not None and summary["status"] == "Completed with Errors", summary
    assert outcome.task_states["deliver"] == "success"
    bad = {cid: case for cid, case in planted.items() if case.outcome == "error_row"}
    seeded_failing = {ids[0] for ids in special_coverages(200).values()}
    rows = [r for r in outcome.error_rows() if r["record_key"].split("#")[1] not in seeded_failing]
    assert_clear_rows([{**r, "record_key": r["record_key"].split("#")[1]} for r in rows], bad)
    # Every good record, planted or seeded, was loaded: compared as sets of PlanSource record ids.
    with sqlite3.connect(sandbox.plansource_state_path) as conn:
        real = {
            cid
            for (cid,) in conn.execute(
                "SELECT id FROM payroll_coverage WHERE plan_year = 2026 AND test_employee = 0"
            )
        }
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        conn.row_factory = sqlite3.Row
        loaded = {
            r["plansource_coverage_id"]: dict(r) for r in conn.execute("SELECT * FROM hcm_payroll_deduction")
        }
    superseded = real - set(loaded) - set(bad) - seeded_failing
    # A life event's older record shares its key with the newer one; only the newer is a row of its own.
    with sqlite3.connect(sandbox.plansource_state_path) as conn:
        old_versions = {cid for (cid,) in conn.execute("SELECT id FROM payroll_coverage WHERE current = 0")}
    assert superseded <= old_versions, sorted(superseded - old_versions)[:5]
    assert not set(loaded) & (set(bad) | seeded_failing)
    for coverage_id, case in planted.items():
        if case.outcome != "error_row":
            field, value = case.expect["field"], case.expect["value"]
            assert f"{float(loaded[coverage_id][field]):.2f}" == value, case


# -- iJoin Participant Sync ----------------------------------------------------------------------------


def test_participant_sync_batch_of_bad_recordkeeper_rows(sandbox: Any) -> None:
    import requests

    from hub_sandbox.recordkeeper import special_participants

    plan = "P0001"
    special = {p for people in special_participants(6, 30).values() for p in people}
    ordinary = [f"{plan}-{j:06d}" for j in range(1, 31) if f"{plan}-{j:06d}" not in special]
    seeded_bad = {p for p in special_participants(6, 30)["allocations_not_100"] if p.startswith(plan)}
    planted: dict[str, Case] = {}
    with sqlite3.connect(sandbox.recordkeeper_db_path) as conn:
        open_funds = [
            f
            for (f,) in conn.execute("SELECT fund_id FROM rk_fund WHERE plan_id = ? AND is_open = 1", (plan,))
        ]
        # The corpus names funds F001, F002, F003; here they are the plan's own open funds, in order.
        fund_of = dict(zip(("F001", "F002", "F003"), open_funds, strict=False))
        for participant, case in zip(ordinary, batch("recordkeeper"), strict=False):
            planted[participant] = case
            given = case.data["input"]
            if case.data["check"] == "allocations":
                conn.execute(
                    "DELETE FROM rk_allocation WHERE plan_id = ? AND participant_id = ?", (plan, participant)
                )
                conn.executemany(
                    "INSERT INTO rk_allocation (plan_id, participant_id, fund_id, pct) VALUES (?, ?, ?, ?)",
                    [(plan, participant, fund_of[a["fund_id"]], a["pct"]) for a in given],
                )
            elif case.data["check"] == "salary":
                conn.execute(
                    "UPDATE rk_participant SET annual_salary = ?, computed_compensation = ? "
                    "WHERE plan_id = ? AND participant_id = ?",
                    (given["annual_salary"], given["computed_compensation"], plan, participant),
                )
    assert len(planted) == len(batch("recordkeeper")) and len(open_funds) >= 3

    outcome = run_dag("ijoin_participant_sync", {"plan_ids": plan})

    summary = outcome.summary
    assert summary is not None and summary["status"] == "Completed with Errors", summary
    bad = {f"{plan}/{p}": c for p, c in planted.items() if c.outcome == "error_row"}
    rows = [r for r in outcome.error_rows() if r["record_key"].split("/")[1] not in seeded_bad]
    assert_clear_rows(rows, bad)
    # Every participant of the plan reached iJoin, the bad ones without their allocations.
    headers = {"Authorization": f"Bearer {sandbox.info['ijoin_api_key']}"}

    def in_ijoin(participant: str) -> dict[str, Any]:
        url = f"{sandbox.ijoin_url}/sandbox/participants/{plan}/{participant}"
        response = requests.get(url, headers=headers, timeout=10)
        response.raise_for_status()
        body = response.json().get("data", response.json())
        return {**body, **(body.get("body") or {})}

    synced = {f"{plan}-{j:06d}": in_ijoin(f"{plan}-{j:06d}") for j in range(1, 31)}
    assert len(synced) == 30
    for participant, case in planted.items():
        record = synced[participant]
        if case.outcome == "error_row":
            # New in iJoin: never sent (an empty list would clear what iJoin holds).
            assert not record.get("allocations") and record["sync_status"] == "Synchronized with warnings"
        elif case.data["check"] == "allocations":
            assert sorted(a["fund_id"] for a in record["allocations"]) == sorted(open_funds[:3])
        else:
            assert f"{float(record['annual_salary']):.2f}" == case.expect["value"]
            assert case.expect["warning"] in record["salary_source"]


# -- Params, through a real trigger ----------------------------------------------------------------------


def test_bad_params_refused_at_trigger_and_at_validate(sandbox: Any) -> None:
    """A schema case never becomes a run; a validate-layer case becomes a Failed run whose summary names
    the param, before any data moves."""
    from airflow.sdk.exceptions import ParamValidationError

    by_id = {c.id: c for c in CASES if c.source == "dag_params"}
    schema_case = by_id["import-plan-year-us-order"]
    with pytest.raises(ParamValidationError, match="Invalid input for param plan_year_start_date"):
        run_dag(schema_case.data["dag_id"], schema_case.data["conf"])

    validate_case = by_id["import-deduction-start-without-plan-year"]
    outcome = run_dag(validate_case.data["dag_id"], validate_case.data["conf"])
    summary = outcome.summary
    assert summary is not None and summary["status"] == "Failed"
    assert outcome.task_states["validate"] == "failed" and outcome.task_states["extract"] == "upstream_failed"
    expected = f"Param '{validate_case.expect['param']}': {validate_case.expect['reason']}"
    assert summary["failure_reason"].startswith(expected), summary["failure_reason"]
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM hcm_payroll_deduction").fetchone()[0] == 0
