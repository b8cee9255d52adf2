"""The Transaction Assistant's form, as pure functions: what the page shows, and what a submit means.

The page lists the import's error records; each open one has an input per field in error that a clerk
may correct (labelled in the clerk's words), prefilled with the value the next resubmission would send
(PlanSource's, or the correction typed last time), and a Dismiss box with its reason. A submit becomes
the resubmission's ``corrections`` and ``dismissals``, checked first by the import's own rules
(:func:`benefits_hub.deductions.corrections.check_corrections`); any refusal goes back to the page next
to its field, and no run starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from benefits_hub.deductions.corrections import (
    ErrorRecord,
    check_corrections,
    check_dismissal,
    error_records,
    label,
)

FIX = "fix"
DISMISS = "dismiss"
DISMISS_REASON = "dismiss_reason"
SEPARATOR = "|"  # record keys hold '#'; field names never hold '|'


def input_name(kind: str, key: str, field: str = "") -> str:
    return SEPARATOR.join((kind, key, field)) if field else SEPARATOR.join((kind, key))


class RecordForm(BaseModel):
    """One error record on the page: its problems, its inputs and anything the last submit said."""

    record: ErrorRecord
    deduction_code: str = ""
    values: dict[str, str] = Field(default_factory=dict)  # field -> the value in its input
    problems: dict[str, str] = Field(default_factory=dict)  # field (or "dismiss") -> why it was refused
    dismiss: bool = False
    dismiss_reason: str = ""

    def field_label(self, field: str) -> str:
        return label(field)


class AssistantView(BaseModel):
    root_run_id: str
    root_run_name: str
    total: int
    records: list[RecordForm]
    resubmissions: list[str]

    @property
    def open(self) -> list[RecordForm]:
        return [r for r in self.records if r.record.state == "open"]

    @property
    def settled(self) -> list[RecordForm]:
        return [r for r in self.records if r.record.state != "open"]

    @property
    def all_corrected(self) -> bool:
        return not self.open


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def build_view(facts: Any) -> AssistantView:
    """The page from :class:`benefits_hub.ui.records.AssistantFacts`."""
    records = error_records(facts.root_rows, facts.later_rows, facts.ledger)
    forms = []
    current_values = current_records(facts)
    for record in records:
        coverage = facts.coverages.get(record.key, {})
        current = current_values.get(record.key, {})
        forms.append(
            RecordForm(
                record=record,
                deduction_code=_shown(coverage.get("plan_payroll_mapping_code")),
                values={field: _shown(current.get(field)) for field in record.correctable_fields},
            )
        )
    return AssistantView(
        root_run_id=facts.root_run_id,
        root_run_name=str(facts.root_summary.get("integration_run_name") or facts.root_run_id),
        total=len(records),
        records=forms,
        resubmissions=list(facts.ledger.resubmissions),
    )


class Submission(BaseModel):
    corrections: dict[str, dict[str, str]] = Field(default_factory=dict)
    dismissals: dict[str, str] = Field(default_factory=dict)
    refused: int = 0  # how many fields or dismissals were refused (0: start the run)


def read_form(
    view: AssistantView, form: Mapping[str, str], current: Mapping[str, Mapping[str, Any]], codes: Any
) -> Submission:
    """The submit as corrections and dismissals; refusals are written into ``view``'s records.

    Only what the clerk changed counts as a correction (an untouched input is the value already on
    file); a record dismissed is not corrected.
    """
    submission = Submission()
    for record_form in view.open:
        key = record_form.record.key
        if form.get(input_name(DISMISS, key)):
            record_form.dismiss = True
            record_form.dismiss_reason = str(form.get(input_name(DISMISS_REASON, key)) or "").strip()
            refused = check_dismissal(record_form.dismiss_reason)
            if refused:
                record_form.problems[DISMISS] = refused
                submission.refused += 1
            else:
                submission.dismissals[key] = record_form.dismiss_reason
            continue
        typed: dict[str, str] = {}
        for field, shown in record_form.values.items():
            value = str(form.get(input_name(FIX, key, field), shown)).strip()
            if value != shown:
                typed[field] = value
                record_form.values[field] = value
        if not typed:
            continue
        refused_fields = check_corrections(current.get(key, {}), typed, codes)
        record_form.problems.update(refused_fields)
        submission.refused += len(refused_fields)
        if not refused_fields:
            submission.corrections[key] = typed
    return submission


def current_records(facts: Any) -> dict[str, dict[str, Any]]:
    """Each error record as the next resubmission would send it: PlanSource's values with the
    corrections on file (what a new correction is checked against)."""
    return {
        key: {**coverage, **facts.ledger.corrections.get(key, {})}
        for key, coverage in facts.coverages.items()
    }
