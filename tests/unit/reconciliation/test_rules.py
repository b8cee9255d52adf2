"""Reconciliation rules, without Airflow: which discrepancies, of which kind, by the export's rules."""

from __future__ import annotations

from typing import Any

import pytest

from benefits_hub.demographics.rules import CrossReferences, map_subscriber
from benefits_hub.lookup import OutOfOrder, full_outer_join
from benefits_hub.reconciliation.rules import (
    EXPORT_DAG_ID,
    FIELD_DIFFERS,
    HCM_DATA_REFUSED,
    IDENTITY_DIFFERS,
    MISSING_IN_PLANSOURCE,
    NOT_IN_HCM,
    TERMINATED_IN_HCM_ONLY,
    TERMINATED_IN_PLANSOURCE_ONLY,
    counter_label,
    demographic_discrepancies,
)
from tests.unit.demographics.test_rules import employee

XREF = CrossReferences.load()


def in_step(**overrides: Any) -> dict[str, Any]:
    """PlanSource's subscriber exactly as the export would have sent the HCM's employee."""
    fields = map_subscriber(employee(), XREF).fields
    return {**fields, "id": "PS00000001", **overrides}


def kinds(found: list[Any]) -> list[tuple[str, str]]:
    return [(d.kind, d.field) for d in found]


def test_an_employee_plansource_holds_as_the_export_sends_it_is_in_step() -> None:
    assert demographic_discrepancies("E000001", employee(), in_step(), XREF) == []


def test_a_value_the_export_would_send_identically_is_in_step() -> None:
    # PlanSource keeps the salary as a number and dates with a time: the export sends nothing for them.
    held = in_step(current_salary=85000, birthdate="1980-02-03T00:00:00.000Z")
    assert demographic_discrepancies("E000001", employee(), held, XREF) == []


def test_each_kind_with_its_repair() -> None:
    new_hire = employee(plansource_subscriber_id=None)  # PlanSource never gave them an id
    missing = demographic_discrepancies("E000001", new_hire, None, XREF)
    assert kinds(missing) == [(MISSING_IN_PLANSOURCE, "")] and missing[0].repair_by == EXPORT_DAG_ID

    city = demographic_discrepancies("E000001", employee(), in_step(city="Ogdenville"), XREF)
    assert kinds(city) == [(FIELD_DIFFERS, "city")]
    assert (city[0].hcm_value, city[0].other_value) == ("Springfield", "Ogdenville")

    left = employee(employee_status_code="T", termination_date="2026-11-20", termination_reason_code="RESIGN")
    terminated = demographic_discrepancies("E000001", left, in_step(), XREF)
    assert kinds(terminated) == [(TERMINATED_IN_HCM_ONLY, "termination_date")]
    assert terminated[0].hcm_value == "2026-11-20"

    gone = in_step(subscriber_status="Terminated", termination_date="2026-10-01")
    rehire = demographic_discrepancies("E000001", employee(), gone, XREF)
    assert kinds(rehire) == [(TERMINATED_IN_PLANSOURCE_ONLY, "termination_date")]


def test_what_no_integration_repairs_says_what_a_person_does() -> None:
    stray = demographic_discrepancies("E999999", None, {"employee_number": "E999999"}, XREF)
    assert kinds(stray) == [(NOT_IN_HCM, "")] and not stray[0].repair_by
    assert "check the employee number in PlanSource" in stray[0].what_to_do
    # PlanSource's own test employees are never in the HCM: not a discrepancy.
    assert demographic_discrepancies("T1", None, {"test_employee": True}, XREF) == []

    ssn = demographic_discrepancies("E000001", employee(), in_step(ssn="987654321"), XREF)
    assert kinds(ssn) == [(IDENTITY_DIFFERS, "ssn")] and not ssn[0].repair_by
    assert ssn[0].hcm_value == "***-**-6789"  # masked, never the number

    unmapped = demographic_discrepancies("E000001", employee(pay_group_code="NOPE"), in_step(), XREF)
    assert kinds(unmapped) == [(HCM_DATA_REFUSED, "pay_group_code")]
    assert "cross-reference table" in unmapped[0].what_to_do


def test_a_birth_date_that_differs_is_shown_masked() -> None:
    found = demographic_discrepancies("E000001", employee(), in_step(birthdate="1981-02-03"), XREF)
    assert kinds(found) == [(FIELD_DIFFERS, "birthdate")]
    assert "1980" not in found[0].hcm_value and "1981" not in found[0].other_value


def test_full_outer_join_walks_both_sides_once_and_refuses_disorder() -> None:
    left = [("A", 1), ("C", 3), ("D", 4)]
    right = [("B", "b"), ("C", "c"), ("E", "e")]
    assert list(full_outer_join(left, right)) == [
        ("A", 1, None), ("B", None, "b"), ("C", 3, "c"), ("D", 4, None), ("E", None, "e"),
    ]  # fmt: skip
    with pytest.raises(OutOfOrder, match="PlanSource"):
        list(full_outer_join([("A", 1)], [("C", 1), ("B", 2)]))


def test_counters_read_in_words() -> None:
    assert counter_label("hcm_plansource_demographics__field_differs") == (
        "HCM ↔ PlanSource demographics: A field differs"
    )
    assert counter_label("records_processed") is None
