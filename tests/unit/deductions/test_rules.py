from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from benefits_hub.deductions.rules import (
    deduction_codes,
    differs,
    is_test_employee,
    map_coverage,
    plan_year_of,
    record_key,
    split_record_key,
)

CODES = deduction_codes()


def coverage(**overrides: Any) -> dict[str, Any]:
    record = {
        "id": "COV-1", "subscriber_code": "E000010", "ssn": "180017851", "benefit_name": "Medical",
        "plan_payroll_mapping_code": "MED-PPO", "coverage_level": "Family", "subscriber_premium": "150.00",
        "org_premium": "450.00", "subscriber_pretax_premium": "150.00", "subscriber_posttax_premium": "0.00",
        "tax_treatment": "Pre-Tax", "original_effective_date": "2026-01-01",
        "change_effective_date": "2026/01/01", "termination_date": None,
        "org_plan_year_starts": "2026-01-01T00:00:00.000Z", "updated_at": "2025-11-02T10:00:00Z",
        "test_employee": False,
    }  # fmt: skip
    record.update(overrides)
    return record


def test_good_record_maps_to_a_deduction() -> None:
    mapped = map_coverage(coverage(), CODES, known_person=True)
    assert mapped.errors == []
    row = mapped.row
    assert row is not None
    assert row["deduction_code"] == "MEDPPO"
    assert row["effective_date"] == date(2026, 1, 1) and row["plan_year_start"] == date(2026, 1, 1)
    assert row["employee_amount"] == Decimal("150.00") and row["employer_amount"] == Decimal("450.00")
    assert row["pretax_amount"] == Decimal("150.00") and row["posttax_amount"] == Decimal("0.00")
    assert "ssn" not in row


def test_tax_treatment_splits_when_no_split_is_sent() -> None:
    mapped = map_coverage(
        coverage(subscriber_pretax_premium=None, subscriber_posttax_premium=None, tax_treatment="Post-Tax"),
        CODES, known_person=True,
    )  # fmt: skip
    assert mapped.row["posttax_amount"] == Decimal("150.00") and mapped.row["pretax_amount"] == Decimal(
        "0.00"
    )


@pytest.mark.parametrize(
    ("overrides", "known", "rule", "field"),
    [
        ({}, False, "hcm:unknown_person", "subscriber_code"),
        (
            {"plan_payroll_mapping_code": "ACC-INDEMNITY"},
            True,
            "xref:deduction_code",
            "plan_payroll_mapping_code",
        ),
        ({"subscriber_premium": "-12.50"}, True, "amount:negative", "subscriber_premium"),
        ({"subscriber_premium": "twelve"}, True, "amount", "subscriber_premium"),
        ({"termination_date": "2025-12-31"}, True, "dates:end_before_start", "termination_date"),
        ({"change_effective_date": "2026-13-01"}, True, "date", "change_effective_date"),
        ({"subscriber_premium": None}, True, "required", "subscriber_premium"),
    ],
)
def test_bad_records_are_explained(overrides: dict[str, Any], known: bool, rule: str, field: str) -> None:
    mapped = map_coverage(coverage(**overrides), CODES, known_person=known)
    assert mapped.row is None
    assert [(e.rule, e.field) for e in mapped.errors] == [(rule, field)]
    assert mapped.errors[0].record_key == "E000010#COV-1"
    assert mapped.errors[0].reason


def test_error_rows_never_carry_the_ssn() -> None:
    mapped = map_coverage(coverage(subscriber_premium="-1"), CODES, known_person=False)
    assert "180017851" not in "".join(e.model_dump_json() for e in mapped.errors)


def test_record_key_round_trip() -> None:
    assert split_record_key(record_key(coverage())) == ("E000010", "COV-1")


def test_test_employee_flag_and_plan_year() -> None:
    assert is_test_employee(coverage(test_employee=True)) and is_test_employee(coverage(test_employee="true"))
    assert not is_test_employee(coverage())
    assert plan_year_of(coverage()) == date(2026, 1, 1)


def test_differs_ignores_representation() -> None:
    row = map_coverage(coverage(), CODES, known_person=True).row
    stored = {
        **row,
        "employee_amount": 150.0,
        "effective_date": "2026-01-01",
        "plan_year_start": "2026-01-01",
    }
    assert not differs(row, stored)
    assert differs(row, {**stored, "end_date": "2026-06-30"})
