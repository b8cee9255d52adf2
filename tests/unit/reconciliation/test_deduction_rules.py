"""PlanSource coverages ↔ HCM payroll deductions: each kind of discrepancy, by the import's own rules."""

from __future__ import annotations

from typing import Any

from benefits_hub.lookup import full_outer_join
from benefits_hub.models import ErrorRow
from benefits_hub.reconciliation.rules import (
    IMPORT_DAG_ID,
    counter_label,
    deduction_discrepancies,
    deduction_key,
    refused_coverage,
)

ROW: dict[str, Any] = {
    "person_number": "E000012", "deduction_code": "MED", "effective_date": "2026-01-01", "end_date": None,
    "employee_amount": "120.50", "employer_amount": "300.00", "pretax_amount": "120.50",
    "posttax_amount": "0",
    "coverage_level": "Employee + Spouse", "benefit_name": "Medical PPO", "plan_year_start": "2026-01-01",
    "plansource_coverage_id": "C1",
}  # fmt: skip
KEY = deduction_key(ROW)


def kinds(found: list[Any]) -> list[tuple[str, str]]:
    return [(d.kind, d.field) for d in found]


def test_a_deduction_payroll_holds_as_the_import_loads_it_is_in_step() -> None:
    # The same amount as a database gives it back (a number, trailing zeros) is the same amount.
    assert (
        deduction_discrepancies(KEY, ROW, {**ROW, "employee_amount": 120.5, "posttax_amount": 0.0}, set())
        == []
    )


def test_missing_and_differing_deductions_are_repaired_by_the_import() -> None:
    [missing] = deduction_discrepancies(KEY, ROW, None, set())
    assert (missing.kind, missing.record_key, missing.repair_by) == (
        "missing_in_payroll", "E000012 MED 2026-01-01", IMPORT_DAG_ID,
    )  # fmt: skip
    loaded = {**ROW, "employee_amount": "99.00", "end_date": "2026-06-30", "benefit_name": "Old name"}
    found = deduction_discrepancies(KEY, ROW, loaded, set())
    assert sorted(kinds(found)) == [
        ("amount_differs", "employee_amount"), ("date_differs", "end_date"),
        ("deduction_field_differs", "benefit_name"),
    ]  # fmt: skip
    amount = next(d for d in found if d.kind == "amount_differs")
    assert (amount.hcm_value, amount.other_value) == ("99.00", "120.50")
    assert all(d.repair_by == IMPORT_DAG_ID for d in found)


def test_what_only_payroll_holds_says_what_a_person_does() -> None:
    [extra] = deduction_discrepancies(KEY, None, ROW, set())
    assert extra.kind == "in_payroll_not_in_plansource" and not extra.repair_by
    assert "end-date or remove it in payroll" in extra.what_to_do
    [test] = deduction_discrepancies(KEY, None, ROW, {"E000012"})
    assert test.kind == "test_employee_loaded" and "test employee" in test.what_to_do


def test_a_coverage_the_import_refuses_is_reported_with_its_reason() -> None:
    problem = ErrorRow(
        record_key="E000012#C9", field="subscriber_premium", value="-5.00", rule="amount:negative",
        reason="The employee premium is negative.",
    )  # fmt: skip
    found = refused_coverage("E000012", problem)
    assert (found.kind, found.record_key, found.other_value) == (
        "plansource_record_not_loadable",
        "E000012 C9",
        "-5.00",
    )
    assert found.what_to_do.startswith("The employee premium is negative.")


def test_keys_sort_as_person_code_date_and_counters_read_in_words() -> None:
    keys = [deduction_key({**ROW, "person_number": p, "deduction_code": c}) for p, c in
            [("E1", "MED"), ("E1", "MED2"), ("E10", "A")]]  # fmt: skip
    assert keys == sorted(keys)  # "E1 MED" < "E1 MED2" < "E10 A": the tuples' order
    assert [k for k, _a, _b in full_outer_join([(k, 1) for k in keys], [])] == keys
    label = counter_label("plansource_hcm_deductions__amount_differs")
    assert label == "PlanSource coverages ↔ HCM payroll deductions: An amount differs"


def test_payrolls_row_for_a_record_the_import_refuses_is_a_correction_not_an_extra() -> None:
    from benefits_hub.deductions.rules import coverage_key, deduction_codes

    codes = deduction_codes()
    plansource_code, hcm_code = next((c, r["hcm_code"]) for c, r in codes.rows.items() if r.get("hcm_code"))
    refused = {
        "subscriber_code": "E000012", "plan_payroll_mapping_code": plansource_code,
        "change_effective_date": "2026-01-01T00:00:00.000Z", "subscriber_premium": "-5.00",
    }  # fmt: skip
    assert coverage_key(refused, codes) == ("E000012", hcm_code, "2026-01-01")
    assert coverage_key({**refused, "plan_payroll_mapping_code": "NOPE"}, codes) is None
    key = deduction_key({**ROW, "deduction_code": hcm_code})
    [found] = deduction_discrepancies(key, None, ROW, set(), {key})
    assert found.kind == "corrected_in_payroll" and "correct the record in PlanSource" in found.what_to_do
    # A correction that moved the key (another start date) is known by PlanSource's record id.
    moved = deduction_key({**ROW, "effective_date": "2026-02-01"})
    [by_id] = deduction_discrepancies(moved, None, ROW, set(), {"C1"})
    assert by_id.kind == "corrected_in_payroll"
    [other] = deduction_discrepancies(moved, None, {**ROW, "plansource_coverage_id": "C2"}, set(), {"C1"})
    assert other.kind == "in_payroll_not_in_plansource"
