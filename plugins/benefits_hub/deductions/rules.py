"""PlanSource Deductions Import rules: a payroll coverage record to an HCM payroll deduction.

Pure functions, no Airflow, no I/O. One coverage record becomes one deduction row keyed by
(person number, HCM deduction code, effective date), or a list of error rows saying why not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from benefits_hub.models import ErrorRow
from benefits_hub.pii import mask_field
from benefits_hub.values import ValueProblem, calendar_date, money, text_problem, utc_timestamp
from benefits_hub.xref import CrossReference, load_table

DEDUCTION_COLUMNS: tuple[str, ...] = (
    "person_number", "deduction_code", "effective_date", "end_date", "employee_amount", "employer_amount",
    "pretax_amount", "posttax_amount", "coverage_level", "benefit_name", "plan_year_start",
    "plansource_coverage_id", "source_updated_at",
)  # fmt: skip
KEY_COLUMNS: tuple[str, ...] = ("person_number", "deduction_code", "effective_date")
#: what makes a loaded row different from a new one (the key aside; load bookkeeping never counts)
COMPARED_COLUMNS: tuple[str, ...] = (
    "end_date", "employee_amount", "employer_amount", "pretax_amount", "posttax_amount", "coverage_level",
    "benefit_name", "plan_year_start", "plansource_coverage_id",
)  # fmt: skip
MONEY_COLUMNS = frozenset({"employee_amount", "employer_amount", "pretax_amount", "posttax_amount"})
DATE_COLUMNS = frozenset({"effective_date", "end_date", "plan_year_start"})
TEXT_COLUMN_LIMITS = {"coverage_level": 60, "benefit_name": 120}  # the HCM deduction table's sizes
#: How a reason names a PlanSource field, in a payroll clerk's words (not PlanSource's field names).
FIELD_NOUNS: dict[str, str] = {
    "subscriber_premium": "employee premium",
    "org_premium": "employer premium",
    "subscriber_pretax_premium": "pre-tax premium",
    "subscriber_posttax_premium": "post-tax premium",
    "original_effective_date": "start date",
    "change_effective_date": "change effective date",
    "termination_date": "end date",
    "org_plan_year_starts": "plan year start",
    "plan_payroll_mapping_code": "deduction code",
}


def field_noun(field_name: str) -> str:
    return FIELD_NOUNS.get(field_name) or field_name.replace("_", " ")


def deduction_codes() -> CrossReference:
    return load_table("deduction_code", key="plansource_code")


def record_key(coverage: dict[str, Any]) -> str:
    """How an error row names a coverage record: person number and PlanSource's record id."""
    return f"{coverage.get('subscriber_code') or '?'}#{coverage.get('id') or '?'}"


def split_record_key(key: str) -> tuple[str, str]:
    person, _, coverage_id = key.partition("#")
    return person, coverage_id


@dataclass
class MappedCoverage:
    key: str
    person_number: str
    row: dict[str, Any] | None = None
    errors: list[ErrorRow] = field(default_factory=list)


def is_test_employee(coverage: dict[str, Any]) -> bool:
    flag = coverage.get("test_employee")
    return flag is True or str(flag).lower() in ("true", "1", "yes")


def plan_year_of(coverage: dict[str, Any]) -> date | None:
    try:
        return calendar_date(coverage.get("org_plan_year_starts"))
    except ValueProblem:
        return None


def coverage_key(coverage: dict[str, Any], codes: CrossReference) -> tuple[str, str, str] | None:
    """(person number, HCM deduction code, effective date) of a record, as far as it can be read, even
    one :func:`map_coverage` refuses for another reason (a negative amount); None when it cannot."""
    person = str(coverage.get("subscriber_code") or "").strip()
    code = codes.lookup(str(coverage.get("plan_payroll_mapping_code") or "").strip(), "hcm_code")
    try:
        effective = calendar_date(coverage.get("change_effective_date")) or calendar_date(
            coverage.get("original_effective_date")
        )
    except ValueProblem:
        return None
    return (person, code, effective.isoformat()) if person and code and effective else None


def map_coverage(coverage: dict[str, Any], codes: CrossReference, known_person: bool) -> MappedCoverage:
    """Validate and map one coverage record (``known_person``: the HCM has this person number)."""
    key = record_key(coverage)
    person = str(coverage.get("subscriber_code") or "").strip()
    mapped = MappedCoverage(key=key, person_number=person)
    errors = mapped.errors

    def problem(field_name: str, value: Any, rule: str, reason: str) -> None:
        errors.append(
            ErrorRow(
                record_key=key,
                field=field_name,
                value=mask_field(field_name, value),
                rule=rule,
                reason=reason,
            )
        )

    if not person:
        problem("subscriber_code", "", "required", "The record has no employee number (subscriber_code).")
    elif not known_person:
        problem(
            "subscriber_code", person, "hcm:unknown_person",
            f"Employee {person} is in PlanSource but not in the HCM. Run the HCM Demographic Export, or "
            "correct the employee number in PlanSource.",
        )  # fmt: skip

    plansource_code = str(coverage.get("plan_payroll_mapping_code") or "").strip()
    deduction_code = codes.lookup(plansource_code, "hcm_code") if plansource_code else None
    if not plansource_code:
        problem("plan_payroll_mapping_code", "", "required", "The record has no deduction code.")
    elif deduction_code is None:
        problem(
            "plan_payroll_mapping_code", plansource_code, f"xref:{codes.table}",
            f"PlanSource deduction code '{plansource_code}' has no HCM deduction code in the "
            f"{codes.table.replace('_', ' ')} cross-reference table: ask your benefits administrator to "
            "map it, or correct the code.",
        )  # fmt: skip

    def parse_date(field_name: str, required: bool) -> date | None:
        raw = coverage.get(field_name)
        try:
            value = calendar_date(raw)
        except ValueProblem as exc:
            problem(field_name, raw, "date", f"The {field_noun(field_name)} {exc}.")
            return None
        if value is None and required:
            problem(field_name, "", "required", f"The record has no {field_noun(field_name)}.")
        return value

    effective = parse_date("change_effective_date", required=False) or parse_date(
        "original_effective_date", required=True
    )
    end = parse_date("termination_date", required=False)
    plan_year_start = parse_date("org_plan_year_starts", required=True)
    if effective and end and end < effective:
        problem(
            "termination_date", end.isoformat(), "dates:end_before_start",
            f"The coverage ends ({end.isoformat()}) before it takes effect ({effective.isoformat()}).",
        )  # fmt: skip

    def parse_money(field_name: str, required: bool) -> Decimal | None:
        raw = coverage.get(field_name)
        try:
            value = money(raw)
        except ValueProblem as exc:
            problem(field_name, raw, "amount", f"The {field_noun(field_name)} {exc}.")
            return None
        if value is None:
            if required:
                problem(field_name, "", "required", f"The record has no {field_noun(field_name)}.")
            return None
        if value < 0:
            problem(
                field_name, str(value), "amount:negative",
                f"The {field_noun(field_name)} is negative ({value}); deductions cannot be negative.",
            )  # fmt: skip
            return None
        return value

    employee = parse_money("subscriber_premium", required=True)
    employer = parse_money("org_premium", required=False) or Decimal("0.00")
    pretax = parse_money("subscriber_pretax_premium", required=False)
    posttax = parse_money("subscriber_posttax_premium", required=False)
    if employee is not None and pretax is None and posttax is None:
        # No split sent: the tax treatment says which side the whole premium is on.
        pre = "pre" in str(coverage.get("tax_treatment") or "").lower()
        pretax, posttax = (employee, Decimal("0.00")) if pre else (Decimal("0.00"), employee)
    # Free text PlanSource sends that lands in HCM columns and in the output file a clerk opens.
    for field_name, limit in TEXT_COLUMN_LIMITS.items():
        found = text_problem(field_name.replace("_", " "), coverage.get(field_name), limit)
        if found:
            problem(field_name, coverage.get(field_name), found[0], f"{found[1]} Correct it in PlanSource.")
    if errors:
        return mapped
    mapped.row = {
        "person_number": person,
        "deduction_code": deduction_code,
        "effective_date": effective,
        "end_date": end,
        "employee_amount": employee,
        "employer_amount": employer,
        "pretax_amount": pretax or Decimal("0.00"),
        "posttax_amount": posttax or Decimal("0.00"),
        "coverage_level": _text(coverage.get("coverage_level")),
        "benefit_name": _text(coverage.get("benefit_name")),
        "plan_year_start": plan_year_start,
        "plansource_coverage_id": str(coverage.get("id") or ""),
        "source_updated_at": utc_timestamp(coverage.get("updated_at")),
    }
    return mapped


def _text(value: Any) -> str | None:
    text = None if value is None else str(value).strip()
    return text or None


def comparable(column: str, value: Any) -> str:
    """One form for a value read back from either database or freshly mapped."""
    if value is None or value == "":
        return ""
    if column in MONEY_COLUMNS:
        return str(Decimal(str(value)).quantize(Decimal("0.01")))
    if column in DATE_COLUMNS:
        return str(value)[:10]
    return str(value)


def is_stale(new: dict[str, Any], existing: dict[str, Any]) -> bool:
    """PlanSource changed this record after ``new`` was read: a replay of an older file must not win."""
    new_at, old_at = new.get("source_updated_at"), existing.get("source_updated_at")
    return bool(new_at and old_at and str(new_at)[:19] < str(old_at)[:19])


def amounts_differ(new: dict[str, Any], existing: dict[str, Any]) -> list[str]:
    """The money columns whose amount ``new`` would change (the circuit breaker's measure)."""
    return [c for c in sorted(MONEY_COLUMNS) if comparable(c, new.get(c)) != comparable(c, existing.get(c))]


def differs(new: dict[str, Any], existing: dict[str, Any]) -> bool:
    return any(comparable(c, new.get(c)) != comparable(c, existing.get(c)) for c in COMPARED_COLUMNS)
