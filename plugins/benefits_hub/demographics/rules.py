"""HCM Demographic Export rules: pure functions, no Airflow, no I/O.

- :func:`ssn_problem`: the SSA's rules (python-stdnum), in a clerk's words.
- :func:`map_subscriber`: an HCM employee (primary EIN) to PlanSource subscriber fields, through the
  cross-reference tables; a missing mapping is an error naming the table.
- :func:`identity_problems`: subscriber id, username and SSN held by the HCM against PlanSource's
  record for the same employee number; a mismatch is an error, never an overwrite.
- :func:`plan_changes`: what to send (create, update only the changed fields, terminate, rehire).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from benefits_hub import codec
from benefits_hub.models import ErrorRow
from benefits_hub.pii import mask_field
from benefits_hub.values import ValueProblem, calendar_date, money, text_problem
from benefits_hub.xref import CrossReference, load_table

TERMINATED_STATUSES = frozenset({"Terminated", "Retired", "Deceased"})

# Fields compared with PlanSource and sent on update. Identity fields (ssn, user_name, id) are
# checked, never overwritten; status and termination move through terminate/rehire.
UPDATABLE_FIELDS: tuple[str, ...] = (
    "first_name", "middle_name", "last_name", "birthdate", "gender", "marital_status",
    "address_1", "address_2", "city", "state", "zip_code", "country", "home_phone", "email",
    "hire_date", "original_hire_date", "union_code", "org_payroll_id", "org_class",
    "employment_level", "division", "location", "business_title", "current_salary",
)  # fmt: skip
MONEY_FIELDS = frozenset({"current_salary"})
DATE_FIELDS = frozenset({"birthdate", "hire_date", "original_hire_date", "termination_date"})

# The census file's columns, in order (the file layout PlanSource ingests from SFTP).
CENSUS_COLUMNS: tuple[str, ...] = (
    "employee_number", "user_name", "ssn", "first_name", "middle_name", "last_name", "birthdate",
    "gender", "marital_status", "address_1", "address_2", "city", "state", "zip_code", "country",
    "home_phone", "email", "hire_date", "original_hire_date", "union_code", "org_payroll_id",
    "org_class", "employment_level", "division", "location", "business_title", "current_salary",
    "subscriber_status", "termination_date", "termination_reason", "is_voluntary_termination",
)  # fmt: skip


# Free-text HCM fields and the most characters each may hold (the HCM schema's column sizes; PlanSource
# takes no more). Each is checked for spreadsheet formulas too; a phone such as "+1 555 0100" is none.
TEXT_LIMITS: dict[str, int] = {
    "first_name": 100, "middle_name": 100, "last_name": 100, "address_1": 200, "address_2": 200,
    "city": 100, "state": 2, "zip_code": 10, "country": 3, "home_phone": 20, "work_email": 200,
    "job_title": 100, "location": 100, "division": 100, "plansource_username": 100,
}  # fmt: skip

_TEXT_CHECKS = tuple((name, limit, name.replace("_", " ")) for name, limit in TEXT_LIMITS.items())


def ssn_problem(ssn: str | None) -> str | None:
    """``None`` if ``ssn`` is a valid SSN by the SSA's rules, else a plain-language reason."""
    if not ssn or not str(ssn).strip():
        return "The HCM has no SSN for this employee."
    compact = str(ssn).replace("-", "")
    if not (compact.isascii() and compact.isdigit()):  # full-width digits are digits to Python
        compact = re.sub(r"[-\s]", "", str(ssn))
        if not (compact.isascii() and compact.isdigit()):
            return "The SSN has characters other than digits and dashes."
    if len(compact) != 9:
        return "The SSN does not have 9 digits."
    if _issued(compact):
        return None
    # Only an SSN the quick check refused gets here: python-stdnum says which rule it breaks.
    from stdnum import exceptions
    from stdnum.us import ssn as us_ssn

    try:
        us_ssn.validate(compact)
    except exceptions.InvalidComponent:
        return f"The SSN is not one the SSA issues: {_ssa_rule(compact)} Correct it in the HCM."
    except exceptions.ValidationError:
        return "The SSN is not valid."
    return None


# SSNs the SSA voided after printing them on sample cards (python-stdnum's list).
_ADVERTISING = frozenset({"078051120", "457555462", "219099999"})


def _issued(compact: str) -> bool:
    """python-stdnum's verdict on 9 ASCII digits, without its per-call regex work (a census checks a
    million SSNs); only a number this accepts skips stdnum, and a test holds the two to the same answer."""
    area = compact[:3]
    return (
        area != "000"
        and area != "666"
        and area[0] != "9"
        and compact[3:5] != "00"
        and compact[5:] != "0000"
        and compact not in _ADVERTISING
    )


def _ssa_rule(compact: str) -> str:
    """Which SSA rule a 9-digit SSN breaks, in words that never show the number."""
    area, group, serial = compact[:3], compact[3:5], compact[5:]
    if area in ("000", "666"):
        return f"area {area} (the first three digits are {area}, which the SSA never assigns)."
    if area.startswith("9"):
        return "area 900-999 (the first digit is 9: those are taxpayer ids such as ITINs, not SSNs)."
    if group == "00":
        return "group 00 (the fourth and fifth digits are 00, which the SSA never assigns)."
    if serial == "0000":
        return "serial 0000 (the last four digits are 0000, which the SSA never assigns)."
    return "an advertising number (the SSA voided it after it was printed on sample cards)."


def normalise_ssn(ssn: Any) -> str:
    if not ssn:
        return ""
    if type(ssn) is not str:  # an HCM column without a text type hands over 108010786 as a number
        ssn = str(ssn)
    digits = ssn.replace("-", "")
    # isdecimal() is exactly what \d matches: most SSNs need no regex.
    return digits if digits.isdecimal() else re.sub(r"\D", "", ssn)


@dataclass(frozen=True)
class CrossReferences:
    """The tables the export maps through, loaded once per task."""

    employment_type: CrossReference
    pay_group: CrossReference
    pay_type: CrossReference
    termination_reason: CrossReference
    union_code: CrossReference
    gender: CrossReference
    marital_status: CrossReference
    employee_status: CrossReference

    @classmethod
    def load(cls, directory: str | None = None) -> CrossReferences:
        return cls(**{name: load_table(name, directory) for name in cls.__dataclass_fields__})


@dataclass
class MappedEmployee:
    person_number: str
    fields: dict[str, Any]
    errors: list[ErrorRow] = field(default_factory=list)
    exported_status: bool = True  # False: the status is not one the tables export


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = (value if type(value) is str else str(value)).strip()
    return text or None


def _date(value: Any) -> str | None:
    # Calendar dates as written: take the date part, never convert through a time zone.
    text = _text(value)
    return text[:10].replace("/", "-") if text else None


def _money(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return str(Decimal(text).quantize(Decimal("0.01")))
    except InvalidOperation:
        return None


def map_subscriber(employee: dict[str, Any], xref: CrossReferences) -> MappedEmployee:
    """Map one HCM employee row (person joined with the primary employment) to PlanSource fields."""
    person_number = str(employee["person_number"])
    mapped = MappedEmployee(person_number=person_number, fields={})
    errors = mapped.errors

    def through(
        table: CrossReference, hcm_field: str, required: bool = True, column: str = "plansource_code"
    ):
        code = _text(employee.get(hcm_field))
        if code is None:
            if required:
                errors.append(
                    ErrorRow(
                        record_key=person_number,
                        field=hcm_field,
                        value="",
                        rule="required",
                        reason=f"The HCM has no {hcm_field.replace('_', ' ')} for this employee.",
                    )
                )
            return None
        value = table.lookup(code, column)
        if value is None:
            errors.append(
                ErrorRow(
                    record_key=person_number,
                    field=hcm_field,
                    value=mask_field(hcm_field, code),
                    rule=f"xref:{table.table}",
                    reason=(
                        f"HCM code '{code}' has no PlanSource value in the {table.table.replace('_', ' ')} "
                        "cross-reference table: ask your HR administrator to map it, or correct the "
                        "employee's code in the HCM."
                    ),
                )
            )
        return value

    status = through(xref.employee_status, "employee_status_code")
    if status is not None:
        mapped.exported_status = xref.employee_status.lookup(employee["employee_status_code"], "export") or ""
        mapped.exported_status = str(mapped.exported_status).lower() == "true"

    problem = ssn_problem(employee.get("ssn"))
    if problem:
        errors.append(
            ErrorRow(
                record_key=person_number,
                field="ssn",
                value=mask_field("ssn", employee.get("ssn")),
                rule="ssn:ssa",
                reason=problem,
            )
        )

    def problem(hcm_field: str, raw: Any, rule: str, reason: str) -> None:
        errors.append(
            ErrorRow(
                record_key=person_number,
                field=hcm_field,
                value=mask_field(hcm_field, raw),
                rule=rule,
                reason=reason,
            )
        )

    # Each free-text field checked and taken (stripped; blank is None) in one pass.
    text: dict[str, str | None] = {}
    for hcm_field, limit, label in _TEXT_CHECKS:
        value = employee.get(hcm_field)
        found = text_problem(label, value, limit)
        if found:
            rule, reason = found
            problem(hcm_field, value, rule, f"{reason} Correct it in the HCM.")
        text[hcm_field] = (value.strip() or None) if type(value) is str else _text(value)

    def date_of(hcm_field: str, required: bool) -> str | None:
        raw = employee.get(hcm_field)
        label = hcm_field.replace("_", " ")
        try:
            value = calendar_date(raw)
        except ValueProblem as exc:
            problem(hcm_field, raw, "date", f"The {label} {exc}. Correct it in the HCM.")
            return None
        if value is None:
            if required:
                problem(hcm_field, "", "required", f"The HCM has no {label} for this employee.")
            return None
        return value.isoformat()[:10]  # a datetime from a driver is still a calendar date

    birthdate = date_of("birth_date", required=True)
    hire_date = date_of("hire_date", required=True)
    original_hire_date = date_of("original_hire_date", required=False)
    if birthdate and hire_date and hire_date <= birthdate:
        problem(
            "hire_date", hire_date, "dates:hired_before_born",
            "The hire date is not after the birth date; one of them is wrong in the HCM.",
        )  # fmt: skip

    salary: str | None = None
    try:
        amount = money(employee.get("annual_salary"))
    except ValueProblem as exc:
        problem(
            "annual_salary", employee.get("annual_salary"), "amount",
            f"The annual salary {exc}. Correct it in the HCM.",
        )  # fmt: skip
    else:
        if amount is not None and amount < 0:
            problem(
                "annual_salary", str(amount), "amount:negative",
                f"The annual salary is negative ({amount}). Correct it in the HCM.",
            )  # fmt: skip
        elif amount is not None:
            salary = str(amount)

    termination_reason = None
    voluntary = None
    terminated = status in TERMINATED_STATUSES
    if terminated and _text(employee.get("termination_reason_code")):
        termination_reason = through(xref.termination_reason, "termination_reason_code")
        flag = xref.termination_reason.lookup(employee.get("termination_reason_code"), "voluntary")
        voluntary = None if flag is None else flag.lower() == "true"

    mapped.fields = {
        "employee_number": person_number,
        "user_name": text["plansource_username"],
        "ssn": normalise_ssn(employee.get("ssn")),
        "first_name": text["first_name"],
        "middle_name": text["middle_name"],
        "last_name": text["last_name"],
        "birthdate": birthdate,
        "gender": through(xref.gender, "gender_code"),
        "marital_status": through(xref.marital_status, "marital_status_code", required=False),
        "address_1": text["address_1"],
        "address_2": text["address_2"],
        "city": text["city"],
        "state": text["state"],
        "zip_code": text["zip_code"],
        "country": text["country"],
        "home_phone": text["home_phone"],
        "email": text["work_email"],
        "hire_date": hire_date,
        "original_hire_date": original_hire_date,
        "union_code": through(xref.union_code, "union_code", required=False),
        "org_payroll_id": through(xref.pay_group, "pay_group_code"),
        "org_class": through(xref.pay_type, "pay_type_code"),
        "employment_level": through(xref.employment_type, "employment_type_code"),
        "division": text["division"],
        "location": text["location"],
        "business_title": text["job_title"],
        "current_salary": salary,
        "subscriber_status": status,
        "termination_date": date_of("termination_date", required=False) if terminated else None,
        "termination_reason": termination_reason,
        "is_voluntary_termination": voluntary,
    }
    return mapped


def duplicate_problem(person_number: str, rows: int) -> ErrorRow:
    """The HCM gave this employee more than one primary employment: which one to send is not ours to guess."""
    return ErrorRow(
        record_key=person_number,
        field="is_primary",
        value=str(rows),
        rule="hcm:duplicate_primary",
        reason=(
            f"The HCM has {rows} primary employments for this employee; exactly one must be primary. "
            "Mark the other employments as not primary in the HCM."
        ),
    )


def identity_problems(
    person_number: str,
    hcm_subscriber_id: str | None,
    hcm_username: str | None,
    hcm_ssn: str,
    plansource: dict[str, Any] | None,
) -> list[ErrorRow]:
    """Subscriber id, username and SSN held by the HCM checked against PlanSource's record."""
    problems: list[ErrorRow] = []
    hcm_subscriber_id = _text(hcm_subscriber_id)
    hcm_username = _text(hcm_username)
    if plansource is None:
        if hcm_subscriber_id:
            problems.append(
                ErrorRow(
                    record_key=person_number,
                    field="plansource_subscriber_id",
                    value=hcm_subscriber_id,
                    rule="identity:subscriber_id",
                    reason=(
                        "The HCM holds a PlanSource subscriber id for this employee, but PlanSource has "
                        "no subscriber with this employee number. Check the employee number in PlanSource."
                    ),
                )
            )
        return problems
    plansource_id = _text(plansource.get("id"))
    if hcm_subscriber_id and plansource_id and hcm_subscriber_id != plansource_id:
        problems.append(
            ErrorRow(
                record_key=person_number,
                field="plansource_subscriber_id",
                value=hcm_subscriber_id,
                rule="identity:subscriber_id",
                reason=(
                    f"The subscriber id in the HCM ({hcm_subscriber_id}) is not PlanSource's id for this "
                    f"employee ({plansource_id}). Correct it in the HCM; the export never overwrites it."
                ),
            )
        )
    plansource_username = _text(plansource.get("user_name"))
    if hcm_username and plansource_username and hcm_username.lower() != plansource_username.lower():
        problems.append(
            ErrorRow(
                record_key=person_number,
                field="user_name",
                value=hcm_username,
                rule="identity:user_name",
                reason=(
                    "The PlanSource username in the HCM is not the one PlanSource holds for this "
                    "employee. Correct it in the HCM or in PlanSource; the export never overwrites it."
                ),
            )
        )
    plansource_ssn = normalise_ssn(plansource.get("ssn"))
    if hcm_ssn and plansource_ssn and hcm_ssn != plansource_ssn:
        problems.append(
            ErrorRow(
                record_key=person_number,
                field="ssn",
                value=mask_field("ssn", hcm_ssn),
                rule="identity:ssn",
                reason=(
                    "The SSN in the HCM is not the SSN PlanSource holds for this employee. Confirm the "
                    "right SSN and correct the wrong system; the export never overwrites an SSN."
                ),
            )
        )
    return problems


def _comparable(field_name: str, value: Any) -> str:
    if value is None:
        return ""
    if field_name in MONEY_FIELDS:
        return _money(value) or ""
    if field_name in DATE_FIELDS:
        return _date(value) or ""
    return str(value).strip()


# The updatable fields whose value can be written more than one way, by position.
_FORM_FIELDS = tuple(
    (index, name) for index, name in enumerate(UPDATABLE_FIELDS) if name in MONEY_FIELDS | DATE_FIELDS
)


def changed_fields(desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The updatable fields whose HCM value differs from PlanSource's (PUT sends only these)."""
    wanted, held = list(map(desired.get, UPDATABLE_FIELDS)), list(map(current.get, UPDATABLE_FIELDS))
    if wanted == held:  # the usual case, told at C speed: no field changed
        return {}
    # The next most usual: only a written form differs (PlanSource answers 86343.0 for 86343.00). The
    # money and date fields settled first, the lists compare at C speed again.
    for index, name in _FORM_FIELDS:
        want, have = wanted[index], held[index]
        if want != have and _comparable(name, want) == _comparable(name, have):
            held[index] = want
    if wanted == held:
        return {}
    changed = {}
    for name, want, have in zip(UPDATABLE_FIELDS, wanted, held, strict=True):
        # Equal values compare equal whatever their kind: most fields, checked without normalising.
        if want != have and _comparable(name, want) != _comparable(name, have):
            changed[name] = want
    return changed


@dataclass(frozen=True)
class SubscriberChange:
    employee_number: str
    actions: tuple[str, ...]  # in order: create | rehire | update | terminate
    fields: dict[str, Any]
    subscriber_id: str | None

    def as_record(self, fingerprint: str) -> dict[str, Any]:
        return {
            "employee_number": self.employee_number,
            "actions": list(self.actions),
            "fields": self.fields,
            "subscriber_id": self.subscriber_id,
            "fingerprint": fingerprint,
        }


def plan_changes(desired: dict[str, Any], plansource: dict[str, Any] | None) -> SubscriberChange | None:
    """What to send PlanSource for one employee; ``None`` when PlanSource is already right."""
    number = desired["employee_number"]
    hcm_terminated = desired.get("subscriber_status") in TERMINATED_STATUSES
    if plansource is None:
        if hcm_terminated:
            return None  # never known to PlanSource and gone: nothing to enrol
        create = {k: v for k, v in desired.items() if v is not None and k not in ("termination_date",)}
        return SubscriberChange(number, ("create",), create, None)

    actions: list[str] = []
    fields = changed_fields(desired, plansource)
    plansource_terminated = plansource.get("subscriber_status") in TERMINATED_STATUSES or bool(
        _text(plansource.get("termination_date"))
    )
    if plansource_terminated and not hcm_terminated:
        actions.append("rehire")
        fields.setdefault("hire_date", desired.get("hire_date"))
    if fields:
        actions.append("update")
    if hcm_terminated and not plansource_terminated:
        actions.append("terminate")
        fields["termination_date"] = desired.get("termination_date")
        fields["termination_reason"] = desired.get("termination_reason")
        fields["is_voluntary_termination"] = desired.get("is_voluntary_termination")
    if not actions:
        return None
    return SubscriberChange(number, tuple(actions), fields, _text(plansource.get("id")))


def fingerprint(desired: dict[str, Any]) -> str:
    """A digest of everything the export sends for one employee (qualify_delta compares these)."""
    canonical = codec.dumps_canonical(desired)
    if not canonical.isascii():  # the bytes earlier hubs hashed (json's \u escapes): no spurious change
        canonical = json.dumps(desired, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(canonical).hexdigest()[:32]
