"""The Transaction Assistant's form: prefilled values, what a submit means, refusals next to fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benefits_hub.deductions.corrections import Ledger
from benefits_hub.deductions.rules import deduction_codes
from benefits_hub.ui.assistant import (
    DISMISS,
    DISMISS_REASON,
    FIX,
    build_view,
    current_records,
    input_name,
    read_form,
)
from tests.unit.deductions.test_rules import coverage


@dataclass
class Facts:
    root_run_id: str = "manual__1"
    root_summary: dict[str, Any] = field(default_factory=lambda: {"integration_run_name": "Initial import"})
    root_rows: list[dict[str, str]] = field(default_factory=list)
    later_rows: list[dict[str, str]] = field(default_factory=list)
    ledger: Ledger = field(default_factory=lambda: Ledger(root_run_id="manual__1"))
    coverages: dict[str, dict[str, Any]] = field(default_factory=dict)


NEG, UNKNOWN = "E000010#COV-1", "E000099#COV-2"


def facts() -> Facts:
    rows = [
        {"record_key": NEG, "field": "subscriber_premium", "value": "'-12.50", "rule": "amount:negative",
         "reason": "The employee premium is negative (-12.50); deductions cannot be negative."},
        {"record_key": UNKNOWN, "field": "subscriber_code", "value": "E000099", "rule": "hcm:unknown_person",
         "reason": "Employee E000099 is in PlanSource but not in the HCM."},
    ]  # fmt: skip
    return Facts(
        root_rows=rows,
        coverages={
            NEG: coverage(subscriber_premium="-12.50"),
            UNKNOWN: coverage(id="COV-2", subscriber_code="E000099"),
        },
    )


def test_the_page_offers_inputs_only_for_correctable_fields_prefilled_with_the_value_on_file() -> None:
    found = facts()
    found.ledger.corrections[NEG] = {"subscriber_premium": "-1.00"}  # typed last time, still wrong
    view = build_view(found)
    by_key = {r.record.key: r for r in view.records}
    assert by_key[NEG].values == {"subscriber_premium": "-1.00"}
    assert by_key[NEG].record.problems[0].value == "-12.50"  # shown as sent, not spreadsheet-escaped
    assert by_key[UNKNOWN].values == {} and by_key[UNKNOWN].record.elsewhere
    assert by_key[NEG].deduction_code == "MED-PPO" and view.root_run_name == "Initial import"


def test_a_submit_keeps_only_what_changed_and_refuses_bad_values_and_bare_dismissals() -> None:
    found = facts()
    view = build_view(found)
    form = {
        input_name(FIX, NEG, "subscriber_premium"): "12,50",
        input_name(DISMISS, UNKNOWN): "1",
        input_name(DISMISS_REASON, UNKNOWN): "  ",
    }
    submission = read_form(view, form, current_records(found), deduction_codes())
    assert submission.refused == 2 and not submission.corrections and not submission.dismissals
    by_key = {r.record.key: r for r in view.records}
    assert "decimal point" in by_key[NEG].problems["subscriber_premium"]
    assert by_key[NEG].values["subscriber_premium"] == "12,50"  # as typed, for the clerk to fix
    assert "Say why" in by_key[UNKNOWN].problems[DISMISS]

    view = build_view(found)
    form[input_name(FIX, NEG, "subscriber_premium")] = "12.50"
    form[input_name(DISMISS_REASON, UNKNOWN)] = "employee left, not needed"
    submission = read_form(view, form, current_records(found), deduction_codes())
    assert submission.refused == 0
    assert submission.corrections == {NEG: {"subscriber_premium": "12.50"}}
    assert submission.dismissals == {UNKNOWN: "employee left, not needed"}


def test_an_untouched_form_retries_every_open_record_as_it_is() -> None:
    found = facts()
    submission = read_form(build_view(found), {}, current_records(found), deduction_codes())
    assert submission.refused == 0 and submission.corrections == {} and submission.dismissals == {}
