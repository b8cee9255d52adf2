"""The Transaction Assistant's rules: which error records are still open, and whether a correction holds.

A deductions import run (the *root*) leaves error records. Each resubmission corrects, retries or
dismisses the ones still open, and records what happened in the root's **ledger**
(``transaction_assistant.json`` beside the root's run manifest): a record loaded by a resubmission is
*fixed* for good, a dismissed one is *dismissed* with who and why, and the corrections typed so far
accumulate, so the next resubmission starts from the values the clerk last entered. Any run of the
chain (the import or any of its resubmissions) names the same root.

Pure functions and small models; the only I/O is :func:`read_ledger` / :func:`write_ledger` on a
:class:`~benefits_hub.staging.StagingArea` handed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from benefits_hub.deductions.rules import map_coverage, split_record_key

if TYPE_CHECKING:
    from benefits_hub.staging import StagingArea
    from benefits_hub.xref import CrossReference

LEDGER = "transaction_assistant.json"

#: What a clerk may correct, with the label the page shows. Identity (record id, employee number) and
#: bookkeeping may not change: they name the record.
FIELD_LABELS: dict[str, str] = {
    "subscriber_premium": "Premium (employee, per pay period)",
    "subscriber_pretax_premium": "Pre-tax premium",
    "subscriber_posttax_premium": "Post-tax premium",
    "org_premium": "Employer premium",
    "tax_treatment": "Tax treatment",
    "plan_payroll_mapping_code": "Deduction code (PlanSource)",
    "coverage_level": "Coverage level",
    "benefit_name": "Benefit name",
    "original_effective_date": "Start date",
    "change_effective_date": "Change effective date",
    "termination_date": "End date",
    "termination_reason": "Termination reason",
}
CORRECTABLE_FIELDS = frozenset(FIELD_LABELS)
#: Labels of the fields a record is keyed or described by, which the page shows but never offers.
OTHER_LABELS: dict[str, str] = {
    "subscriber_code": "Employee",
    "org_plan_year_starts": "Plan year start",
    "id": "PlanSource record",
}
DISMISS_REASON_MAX = 300


def label(field: str) -> str:
    """A field's clerk label (``subscriber_premium`` → ``Premium (employee, per pay period)``)."""
    return FIELD_LABELS.get(field) or OTHER_LABELS.get(field) or field.replace("_", " ").capitalize()


def fixed_elsewhere(rule: str) -> str | None:
    """Who fixes a record whose problem is outside the record itself, or None when the clerk can."""
    if rule == "hcm:unknown_person":
        return (
            "Fix in the HCM: ask your HR administrator to add this employee to the HCM (or run the HCM "
            "Demographic Export), then resubmit the record unchanged."
        )
    if rule.startswith("xref:"):
        return (
            "Fix the mapping: ask your benefits administrator to map this PlanSource code in the "
            f"{rule.removeprefix('xref:').replace('_', ' ')} table (or correct the code below), then "
            "resubmit the record."
        )
    return None


# -- the ledger -------------------------------------------------------------------------------------
class Fix(BaseModel):
    run_id: str


class Dismissal(BaseModel):
    run_id: str
    user: str
    reason: str


class Ledger(BaseModel):
    """What the resubmissions of one import run did to its error records."""

    root_run_id: str
    fixed: dict[str, Fix] = Field(default_factory=dict)
    dismissed: dict[str, Dismissal] = Field(default_factory=dict)
    corrections: dict[str, dict[str, Any]] = Field(default_factory=dict)
    resubmissions: list[str] = Field(default_factory=list)

    def settled(self, key: str) -> bool:
        return key in self.fixed or key in self.dismissed

    def record(
        self,
        run_id: str,
        *,
        retried: Iterable[str],
        still_wrong: Iterable[str],
        corrections: Mapping[str, Mapping[str, Any]],
        dismissals: Mapping[str, str],
        user: str,
        delivered: bool,
    ) -> None:
        """One resubmission's outcome. A retried record with no error row was loaded (when the run
        delivered); corrections stay with the records still open, so the next run starts from them."""
        if run_id not in self.resubmissions:
            self.resubmissions.append(run_id)
        for key, reason in dismissals.items():
            self.dismissed.setdefault(key, Dismissal(run_id=run_id, user=user, reason=reason))
        wrong = set(still_wrong)
        for key, fields in corrections.items():
            self.corrections[key] = {**self.corrections.get(key, {}), **fields}
        if delivered:
            for key in retried:
                if key not in wrong and key not in self.dismissed:
                    self.fixed.setdefault(key, Fix(run_id=run_id))
        for key in list(self.corrections):
            if self.settled(key):
                del self.corrections[key]


def read_ledger(root: StagingArea) -> Ledger:
    found = root.read_json(LEDGER)
    return Ledger.model_validate(found) if found else Ledger(root_run_id=root.run_id)


def write_ledger(root: StagingArea, ledger: Ledger) -> None:
    root.write_json(LEDGER, ledger.model_dump(mode="json"))


# -- error records as the page shows them -----------------------------------------------------------
class Problem(BaseModel):
    field: str
    label: str
    value: str  # masked
    rule: str
    reason: str
    elsewhere: str | None = None  # who fixes it, when not the clerk on this page


class ErrorRecord(BaseModel):
    key: str
    person_number: str
    coverage_id: str
    state: str  # open | fixed | dismissed
    problems: list[Problem] = Field(default_factory=list)
    settled_by: str | None = None  # the resubmission that fixed or dismissed it
    dismissed_by: str | None = None
    dismiss_reason: str | None = None

    @property
    def correctable_fields(self) -> list[str]:
        """The fields in error that a clerk may correct here, in the order the problems came."""
        fields: list[str] = []
        for problem in self.problems:
            if problem.field in CORRECTABLE_FIELDS and problem.field not in fields:
                fields.append(problem.field)
        return fields

    @property
    def elsewhere(self) -> list[str]:
        return sorted({p.elsewhere for p in self.problems if p.elsewhere})


def error_records(
    root_rows: Iterable[Mapping[str, str]], later_rows: Iterable[Mapping[str, str]], ledger: Ledger
) -> list[ErrorRecord]:
    """The root run's error records, each with its latest problems (a later resubmission's error rows
    replace the root's for the same record) and its state in the ledger."""
    problems: dict[str, list[Problem]] = {}
    for row in root_rows:
        problems.setdefault(row["record_key"], []).append(_problem(row))
    latest: dict[str, list[Problem]] = {}
    for row in later_rows:
        if row["record_key"] in problems:
            latest.setdefault(row["record_key"], []).append(_problem(row))
    found: list[ErrorRecord] = []
    for key, first in problems.items():
        person, coverage_id = split_record_key(key)
        record = ErrorRecord(
            key=key, person_number=person, coverage_id=coverage_id, state="open",
            problems=latest.get(key, first),
        )  # fmt: skip
        if key in ledger.fixed:
            record.state, record.settled_by = "fixed", ledger.fixed[key].run_id
        elif key in ledger.dismissed:
            dismissal = ledger.dismissed[key]
            record.state, record.settled_by = "dismissed", dismissal.run_id
            record.dismissed_by, record.dismiss_reason = dismissal.user, dismissal.reason
        found.append(record)
    return found


def _problem(row: Mapping[str, str]) -> Problem:
    field, rule = row.get("field", ""), row.get("rule", "")
    value = row.get("value", "")
    if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@"):
        value = value[1:]  # the error file's spreadsheet escape; a page shows the value as sent
    return Problem(
        field=field, label=label(field), value=value, rule=rule,
        reason=row.get("reason", ""), elsewhere=fixed_elsewhere(rule),
    )  # fmt: skip


# -- checking a correction before any run starts ----------------------------------------------------
def check_corrections(
    coverage: Mapping[str, Any], fields: Mapping[str, Any], codes: CrossReference
) -> dict[str, str]:
    """Field → reason for each corrected value the import would refuse (empty: all hold).

    The same rules as the import: the corrected record is mapped by ``map_coverage`` and only the
    problems of the corrected fields count (the person is taken as known: that is the HCM's to say).
    """
    reasons: dict[str, str] = {}
    for field in fields:
        if field not in CORRECTABLE_FIELDS:
            reasons[field] = f"'{field}' cannot be corrected here: it identifies the record."
    if reasons:
        return reasons
    corrected = {**coverage, **{k: (None if v in ("", None) else v) for k, v in fields.items()}}
    for problem in map_coverage(corrected, codes, known_person=True).errors:
        if problem.field in fields and problem.field not in reasons:
            reasons[problem.field] = problem.reason
    return reasons


def check_dismissal(reason: str | None) -> str | None:
    """Why a dismissal is refused, or None: a record is never dropped without a reason."""
    text = (reason or "").strip()
    if not text:
        return "Say why this record is not needed (e.g. 'employee left, not needed')."
    if len(text) > DISMISS_REASON_MAX:
        return f"Keep the reason under {DISMISS_REASON_MAX} characters."
    return None
