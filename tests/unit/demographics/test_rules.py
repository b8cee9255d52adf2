from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.us import ssn as stdnum_ssn

from benefits_hub.demographics.rules import (
    CrossReferences,
    changed_fields,
    fingerprint,
    identity_problems,
    map_subscriber,
    normalise_ssn,
    plan_changes,
    ssn_problem,
)

XREF = CrossReferences.load()


def employee(**overrides: Any) -> dict[str, Any]:
    row = {
        "person_number": "E000001", "first_name": "Ada", "middle_name": None, "last_name": "Lovelace",
        "ssn": "123-45-6789", "birth_date": "1980-02-03", "gender_code": "F", "marital_status_code": "M",
        "address_1": "1 Main St", "address_2": None, "city": "Springfield", "state": "IL",
        "zip_code": "62701",
        "country": "USA", "home_phone": "555-0100", "work_email": "ada@example.com",
        "plansource_subscriber_id": "PS00000001", "plansource_username": "alovelace",
        "ein": "12-3456789", "employee_status_code": "A", "employment_type_code": "FT",
        "pay_group_code": "BW-US", "pay_type_code": "S", "union_code": None,
        "hire_date": "2020-01-06", "original_hire_date": "2020-01-06", "termination_date": None,
        "termination_reason_code": None, "annual_salary": "85000", "job_title": "Engineer",
        "location": "HQ", "division": "R&D",
    }  # fmt: skip
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("ssn", "expected"),
    [
        ("123-45-6789", None),
        ("536904399", None),
        ("000-12-3456", "not one the SSA issues: area 000 (the first three digits are 000"),
        ("666-12-3456", "area 666 (the first three digits are 666"),
        ("900-12-3456", "area 900-999 (the first digit is 9"),
        ("123-00-4567", "group 00 (the fourth and fifth digits are 00"),
        ("123-45-0000", "serial 0000 (the last four digits are 0000"),
        ("078-05-1120", "an advertising number (the SSA voided it"),
        ("12345678", "9 digits"),
        ("12345678A", "characters other than digits"),
        ("", "no SSN"),
        (None, "no SSN"),
    ],
)
def test_ssn_rules(ssn: str | None, expected: str | None) -> None:
    problem = ssn_problem(ssn)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem
        digits = re.sub(r"\D", "", ssn or "")
        assert not digits or digits not in problem  # never the number itself


# Nine digits shaped as the boundaries the SSA's rules draw (area 000/666/9xx, group 00, serial 0000,
# the advertising numbers), and any digits at all.
_AREAS = st.sampled_from(["000", "001", "078", "219", "457", "665", "666", "667", "899", "900", "999"])
_NINE = st.one_of(
    st.tuples(_AREAS, st.sampled_from(["00", "01", "05", "09", "55", "99"]),
              st.sampled_from(["0000", "0001", "1120", "5462", "9999"])).map("".join),
    st.text("0123456789", min_size=9, max_size=9),
)  # fmt: skip


@given(_NINE, st.booleans())
def test_ssn_fast_path_agrees_with_stdnum(digits: str, dashed: bool) -> None:
    ssn = f"{digits[:3]}-{digits[3:5]}-{digits[5:]}" if dashed else digits
    assert (ssn_problem(ssn) is None) == stdnum_ssn.is_valid(digits)


@given(st.one_of(st.none(), st.text(), st.text("0123456789-\uff11\u00b2 ")))
def test_normalise_ssn_is_the_digits(ssn: str | None) -> None:
    assert normalise_ssn(ssn) == re.sub(r"\D", "", ssn or "")


def test_map_good_employee() -> None:
    mapped = map_subscriber(employee(), XREF)
    assert mapped.errors == []
    fields = mapped.fields
    assert fields["employee_number"] == "E000001"
    assert fields["ssn"] == "123456789"
    assert fields["org_payroll_id"] == "ORG-PAY-BIWEEKLY"
    assert fields["org_class"] == "SALARY" and fields["employment_level"] == "F"
    assert fields["gender"] == "F" and fields["marital_status"] == "Married"
    assert fields["current_salary"] == "85000.00"
    assert fields["subscriber_status"] == "Active" and fields["termination_date"] is None


@pytest.mark.parametrize(
    ("field", "code", "table"),
    [
        ("pay_group_code", "XX-ZZ", "pay_group"),
        ("employment_type_code", "SEAS", "employment_type"),
        ("pay_type_code", "C", "pay_type"),
        ("gender_code", "Q", "gender"),
        ("marital_status_code", "Z", "marital_status"),
        ("union_code", "TEAM-1", "union_code"),
        ("employee_status_code", "Z", "employee_status"),
    ],
)
def test_missing_mapping_is_error_naming_table(field: str, code: str, table: str) -> None:
    mapped = map_subscriber(employee(**{field: code}), XREF)
    assert len(mapped.errors) == 1
    error = mapped.errors[0]
    assert error.field == field and error.rule == f"xref:{table}"
    # The table by its name in words, and who fixes it: never a repository path.
    assert table.replace("_", " ") in error.reason and "administrator" in error.reason
    assert "include/" not in error.reason and ".csv" not in error.reason


def test_termination_reason_mapped_and_voluntary() -> None:
    mapped = map_subscriber(
        employee(employee_status_code="T", termination_date="2026-10-31", termination_reason_code="RESIGN"),
        XREF,
    )
    assert mapped.errors == []
    assert mapped.fields["termination_reason"] == "Voluntary Resignation"
    assert mapped.fields["is_voluntary_termination"] is True
    assert mapped.fields["termination_date"] == "2026-10-31"


def test_unmapped_termination_reason() -> None:
    mapped = map_subscriber(employee(employee_status_code="T", termination_reason_code="NOPE"), XREF)
    assert [e.rule for e in mapped.errors] == ["xref:termination_reason"]


def test_numbers_from_an_untyped_hcm_column_map_as_their_text() -> None:
    # SQLite hands over a column without a text type as numbers: one such row is mapped or becomes an
    # error row, never the exception that failed the whole transform.
    mapped = map_subscriber(
        employee(ssn=123456789, employee_status_code="T", termination_reason_code=12, termination_date=None),
        XREF,
    )
    assert mapped.fields["ssn"] == "123456789"
    assert [(e.field, e.rule) for e in mapped.errors] == [
        ("termination_reason_code", "xref:termination_reason")
    ]
    assert mapped.fields["is_voluntary_termination"] is None


def test_invalid_ssn_error_is_masked() -> None:
    mapped = map_subscriber(employee(ssn="666-12-3456"), XREF)
    assert [e.field for e in mapped.errors] == ["ssn"]
    assert mapped.errors[0].value == "***-**-3456"
    dumped = mapped.errors[0].model_dump_json()
    assert "666-12" not in dumped and "66612" not in dumped


def test_not_exported_status() -> None:
    assert map_subscriber(employee(employee_status_code="P"), XREF).exported_status is False
    assert map_subscriber(employee(employee_status_code="L"), XREF).exported_status is True


def test_dates_are_calendar_dates() -> None:
    mapped = map_subscriber(employee(hire_date="2020-01-06T00:00:00.000Z", birth_date="1980/02/03"), XREF)
    assert mapped.fields["hire_date"] == "2020-01-06" and mapped.fields["birthdate"] == "1980-02-03"


PS = {"id": "PS00000001", "user_name": "alovelace", "ssn": "123456789"}


def test_identity_matches() -> None:
    assert identity_problems("E1", "PS00000001", "ALovelace", "123456789", PS) == []


@pytest.mark.parametrize(
    ("subscriber_id", "username", "ssn", "field"),
    [
        ("PS99999999", "alovelace", "123456789", "plansource_subscriber_id"),
        ("PS00000001", "someone", "123456789", "user_name"),
        ("PS00000001", "alovelace", "123456780", "ssn"),
    ],
)
def test_identity_mismatch_names_field(subscriber_id: str, username: str, ssn: str, field: str) -> None:
    problems = identity_problems("E1", subscriber_id, username, ssn, PS)
    assert [p.field for p in problems] == [field]
    assert "never overwrites" in problems[0].reason
    assert "123456780" not in problems[0].model_dump_json()


def test_subscriber_id_but_unknown_to_plansource() -> None:
    problems = identity_problems("E1", "PS00000001", None, "123456789", None)
    assert [p.rule for p in problems] == ["identity:subscriber_id"]
    assert identity_problems("E1", None, None, "123456789", None) == []


def test_changed_fields_only() -> None:
    desired = map_subscriber(employee(city="Shelbyville", annual_salary="85000.0"), XREF).fields
    current = dict(map_subscriber(employee(), XREF).fields, current_salary="85000.0")
    assert changed_fields(desired, current) == {"city": "Shelbyville"}


def test_plan_create_update_terminate_rehire() -> None:
    desired = map_subscriber(employee(), XREF).fields
    created = plan_changes(desired, None)
    assert created is not None and created.actions == ("create",) and created.fields["ssn"] == "123456789"
    assert plan_changes(desired, dict(desired, id="PS00000001")) is None

    moved = plan_changes(dict(desired, city="Shelbyville"), dict(desired, id="PS1"))
    assert moved is not None and moved.actions == ("update",) and moved.fields == {"city": "Shelbyville"}

    terminated = map_subscriber(
        employee(employee_status_code="T", termination_date="2026-10-31", termination_reason_code="LAYOFF"),
        XREF,
    ).fields
    change = plan_changes(terminated, dict(desired, id="PS1"))
    assert change is not None and change.actions == ("terminate",)
    assert (
        change.fields["termination_reason"] == "Layoff" and change.fields["is_voluntary_termination"] is False
    )

    rehire = plan_changes(
        desired, dict(desired, id="PS1", subscriber_status="Terminated", termination_date="2025-01-01")
    )
    assert rehire is not None and rehire.actions[0] == "rehire"

    assert plan_changes(terminated, None) is None  # never enrolled, already gone


def test_fingerprint_stable_and_sensitive() -> None:
    desired = map_subscriber(employee(), XREF).fields
    assert fingerprint(desired) == fingerprint(dict(desired))
    assert fingerprint(desired) != fingerprint(dict(desired, city="X"))
