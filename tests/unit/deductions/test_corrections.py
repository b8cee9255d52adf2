"""The Transaction Assistant's rules: correction checks, dismissals, the ledger, open records."""

from __future__ import annotations

from typing import Any

import pytest

from benefits_hub.deductions.corrections import (
    CORRECTABLE_FIELDS,
    FIELD_LABELS,
    Ledger,
    check_corrections,
    check_dismissal,
    error_records,
    fixed_elsewhere,
    label,
)
from benefits_hub.deductions.rules import deduction_codes
from tests.unit.deductions.test_rules import coverage

CODES = deduction_codes()


def test_every_correctable_field_has_a_clerk_label() -> None:
    assert set(FIELD_LABELS) == CORRECTABLE_FIELDS
    assert label("subscriber_premium") == "Premium (employee, per pay period)"
    assert label("subscriber_pretax_premium") == "Pre-tax premium"
    assert label("original_effective_date") == "Start date"
    assert all("_" not in text for text in FIELD_LABELS.values())


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"subscriber_premium": "-12.50"}, "subscriber_premium", "is negative"),
        ({"subscriber_premium": "12,50"}, "subscriber_premium", "decimal point"),
        ({"subscriber_premium": "twelve"}, "subscriber_premium", "employee premium"),
        ({"subscriber_premium": ""}, "subscriber_premium", "no employee premium"),
        ({"org_premium": "-1"}, "org_premium", "employer premium is negative"),
        ({"change_effective_date": "2026-02-30"}, "change_effective_date", "not a real calendar date"),
        ({"termination_date": "2025-01-01"}, "termination_date", "ends (2025-01-01) before it takes effect"),
        (
            {"plan_payroll_mapping_code": "NOPE"},
            "plan_payroll_mapping_code",
            "ask your benefits administrator",
        ),
        ({"coverage_level": "x" * 61}, "coverage_level", "60"),
        ({"subscriber_code": "E000011"}, "subscriber_code", "cannot be corrected here"),
    ],
)
def test_a_bad_correction_is_refused_by_the_imports_own_rule(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    refused = check_corrections(coverage(), fields, CODES)
    assert field in refused and reason in refused[field], refused


def test_a_good_correction_holds_and_other_fields_problems_do_not_count() -> None:
    broken = coverage(subscriber_premium="-5", org_premium="-3")
    assert check_corrections(broken, {"subscriber_premium": "12.50"}, CODES) == {}
    assert check_corrections(coverage(), {"plan_payroll_mapping_code": "MED-PPO"}, CODES) == {}


@pytest.mark.parametrize(
    ("reason", "refused"), [("", True), ("   ", True), ("x" * 301, True), ("left", False)]
)
def test_a_dismissal_needs_a_reason(reason: str, refused: bool) -> None:
    assert (check_dismissal(reason) is not None) is refused


def test_fixes_elsewhere_say_who_fixes_them_in_words() -> None:
    assert "HR administrator" in (fixed_elsewhere("hcm:unknown_person") or "")
    mapping = fixed_elsewhere("xref:deduction_code") or ""
    assert "deduction code table" in mapping and ".csv" not in mapping
    assert fixed_elsewhere("amount:negative") is None


def _row(key: str, field: str, value: str, rule: str, reason: str) -> dict[str, str]:
    return {"record_key": key, "field": field, "value": value, "rule": rule, "reason": reason}


ROWS = [
    _row("E1#C1", "subscriber_premium", "-1", "amount:negative", "neg"),
    _row("E2#C2", "plan_payroll_mapping_code", "X", "xref:deduction_code", "unmapped"),
    _row("E3#C3", "subscriber_code", "E3", "hcm:unknown_person", "who"),
]


def test_the_ledger_accumulates_until_every_record_is_settled() -> None:
    ledger = Ledger(root_run_id="root")
    # First resubmission: E1 corrected and loaded, E2 corrected but still wrong, E3 retried unchanged.
    ledger.record(
        "r1", retried=["E1#C1", "E2#C2", "E3#C3"], still_wrong=["E2#C2", "E3#C3"],
        corrections={"E1#C1": {"subscriber_premium": "1"}, "E2#C2": {"coverage_level": "Family"}},
        dismissals={}, user="clerk", delivered=True,
    )  # fmt: skip
    assert set(ledger.fixed) == {"E1#C1"} and ledger.fixed["E1#C1"].run_id == "r1"
    assert ledger.corrections == {"E2#C2": {"coverage_level": "Family"}}  # kept for the next run
    records = {r.key: r for r in error_records(ROWS, [], ledger)}
    assert [k for k, r in records.items() if r.state == "open"] == ["E2#C2", "E3#C3"]
    assert records["E1#C1"].settled_by == "r1"
    # Second: E2 loads, E3 is dismissed; nothing is left.
    ledger.record(
        "r2", retried=["E2#C2"], still_wrong=[],
        corrections={"E2#C2": {"plan_payroll_mapping_code": "MED-PPO"}},
        dismissals={"E3#C3": "employee left, not needed"}, user="clerk2", delivered=True,
    )  # fmt: skip
    records = {r.key: r for r in error_records(ROWS, [], ledger)}
    assert {r.state for r in records.values()} == {"fixed", "dismissed"}
    assert records["E3#C3"].dismissed_by == "clerk2" and records["E3#C3"].dismiss_reason.startswith(
        "employee"
    )
    assert ledger.corrections == {} and ledger.resubmissions == ["r1", "r2"]
    # A replay of the same outcome changes nothing (who fixed a record stays the first run).
    ledger.record(
        "r3", retried=["E1#C1"], still_wrong=[], corrections={}, dismissals={}, user="x", delivered=True
    )
    assert ledger.fixed["E1#C1"].run_id == "r1"


def test_a_run_that_did_not_deliver_fixes_nothing() -> None:
    ledger = Ledger(root_run_id="root")
    ledger.record(
        "r1", retried=["E1#C1"], still_wrong=[], corrections={}, dismissals={}, user="c", delivered=False
    )
    assert ledger.fixed == {}


def test_open_records_show_the_latest_problems_and_who_fixes_them() -> None:
    later = [{"record_key": "E1#C1", "field": "org_premium", "value": "-2", "rule": "amount:negative",
              "reason": "still negative"}]  # fmt: skip
    records = {r.key: r for r in error_records(ROWS, later, Ledger(root_run_id="root"))}
    assert [p.field for p in records["E1#C1"].problems] == ["org_premium"]
    assert records["E1#C1"].correctable_fields == ["org_premium"]
    assert records["E1#C1"].person_number == "E1" and records["E1#C1"].coverage_id == "C1"
    assert records["E3#C3"].correctable_fields == [] and records["E3#C3"].elsewhere
    assert records["E2#C2"].correctable_fields == ["plan_payroll_mapping_code"] and records["E2#C2"].elsewhere
