"""Reconciliation rules: are two systems' end states in step? Pure functions, no Airflow, no I/O.

Each comparison uses the integration's own rules, so a value the integration would send identically
counts as in step: HCM ↔ PlanSource demographics maps each HCM employee exactly as the HCM Demographic
Export does (:func:`benefits_hub.demographics.rules.map_subscriber`, the cross-reference tables) and
asks the export's own question, "what would you send?" (:func:`plan_changes`); whatever it would send is
a discrepancy, of the kind its action says.

A discrepancy names the field and shows both values as an error file would (SSNs and birth dates
masked), says whether an integration can repair it, and if not, what a person must do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benefits_hub.deductions.rules import COMPARED_COLUMNS, DATE_COLUMNS, MONEY_COLUMNS, comparable
from benefits_hub.demographics.rules import (
    CrossReferences,
    identity_problems,
    map_subscriber,
    plan_changes,
)
from benefits_hub.params import RECONCILIATION_PAIRS as PAIR_TITLES
from benefits_hub.pii import mask_field

DEMOGRAPHICS = "hcm_plansource_demographics"
assert DEMOGRAPHICS in PAIR_TITLES
EXPORT_DAG_ID = "plansource_hcm_demographic_export"

# Kinds, in the words the discrepancy file and the Run Summary use.
MISSING_IN_PLANSOURCE = "missing_in_plansource"
NOT_IN_HCM = "in_plansource_not_in_hcm"
TERMINATED_IN_HCM_ONLY = "terminated_in_hcm_active_in_plansource"
TERMINATED_IN_PLANSOURCE_ONLY = "active_in_hcm_terminated_in_plansource"
FIELD_DIFFERS = "field_differs"
IDENTITY_DIFFERS = "identity_differs"
HCM_DATA_REFUSED = "hcm_data_not_sendable"

KIND_TITLES = {
    MISSING_IN_PLANSOURCE: "Missing in PlanSource",
    NOT_IN_HCM: "In PlanSource, not in the HCM",
    TERMINATED_IN_HCM_ONLY: "Terminated in the HCM, active in PlanSource",
    TERMINATED_IN_PLANSOURCE_ONLY: "Active in the HCM, terminated in PlanSource",
    FIELD_DIFFERS: "A field differs",
    IDENTITY_DIFFERS: "Subscriber id, username or SSN differs",
    HCM_DATA_REFUSED: "The HCM's data cannot be sent",
}
TERMINATION_FIELDS = frozenset({"termination_date", "termination_reason", "is_voluntary_termination"})
REPAIR_BY_EXPORT = "Repairable: run the HCM Demographic Export for this employee (Include Employees)."
DISCREPANCY_COLUMNS = (
    "pair",
    "kind",
    "record_key",
    "field",
    "hcm_value",
    "other_value",
    "repair",
    "what_to_do",
)


def counter_name(pair: str, kind: str) -> str:
    """A Run Summary counter per pair and kind: ``hcm_plansource_demographics__field_differs``."""
    return f"{pair}__{kind}"


def counter_label(name: str) -> str | None:
    """A counter's name in words ("HCM ↔ PlanSource demographics: A field differs"), if it is one."""
    pair, _, kind = name.partition("__")
    if pair in PAIR_TITLES and kind in KIND_TITLES:
        return f"{PAIR_TITLES[pair]}: {KIND_TITLES[kind]}"
    return None


@dataclass(frozen=True)
class Discrepancy:
    pair: str
    kind: str
    record_key: str  # the employee number, or plan id / participant id
    field: str = ""
    hcm_value: str = ""  # masked as an error file masks it
    other_value: str = ""
    repair_by: str = ""  # the DAG that owns this direction; empty: no integration can repair it
    what_to_do: str = ""

    def as_row(self) -> list[str]:
        repair = self.repair_by or "none"
        return [self.pair, self.kind, self.record_key, self.field, self.hcm_value, self.other_value, repair,
                self.what_to_do]  # fmt: skip


def demographic_discrepancies(
    number: str, employee: dict[str, Any] | None, subscriber: dict[str, Any] | None, xref: CrossReferences
) -> list[Discrepancy]:
    """What differs between the HCM's employee and PlanSource's subscriber with employee number
    ``number`` (either may be missing), by the export's own rules."""
    if employee is None:
        assert subscriber is not None
        if _is_test_subscriber(subscriber):
            return []  # PlanSource's own test employees are never in the HCM
        return [
            Discrepancy(
                DEMOGRAPHICS, NOT_IN_HCM, number,
                other_value=str(subscriber.get("subscriber_status") or ""),
                what_to_do=(
                    "PlanSource has a subscriber with this employee number and the HCM has no such person: "
                    "check the employee number in PlanSource, or terminate the subscriber there. No "
                    "integration removes a PlanSource subscriber."
                ),
            )
        ]  # fmt: skip
    mapped = map_subscriber(employee, xref)
    if mapped.errors:
        first = mapped.errors[0]
        return [
            Discrepancy(
                DEMOGRAPHICS, HCM_DATA_REFUSED, number, field=first.field, hcm_value=first.value,
                what_to_do=f"{first.reason} The export reports it as an error until then.",
            )
        ]  # fmt: skip
    identity = identity_problems(
        number,
        employee.get("plansource_subscriber_id"),
        employee.get("plansource_username"),
        mapped.fields["ssn"],
        subscriber,
    )
    if identity:
        return [
            Discrepancy(
                DEMOGRAPHICS, IDENTITY_DIFFERS, number, field=problem.field, hcm_value=problem.value,
                what_to_do=problem.reason,
            )
            for problem in identity
        ]  # fmt: skip
    if not mapped.exported_status:
        return []  # a status the export never sends: PlanSource is not expected to have it
    change = plan_changes(mapped.fields, subscriber)
    if change is None:
        return []
    found: list[Discrepancy] = []
    if "create" in change.actions:
        return [Discrepancy(DEMOGRAPHICS, MISSING_IN_PLANSOURCE, number, repair_by=EXPORT_DAG_ID,
                            what_to_do=REPAIR_BY_EXPORT)]  # fmt: skip
    assert subscriber is not None
    if "terminate" in change.actions:
        found.append(
            Discrepancy(
                DEMOGRAPHICS, TERMINATED_IN_HCM_ONLY, number, field="termination_date",
                hcm_value=str(mapped.fields.get("termination_date") or ""),
                other_value=str(subscriber.get("termination_date") or ""),
                repair_by=EXPORT_DAG_ID, what_to_do=REPAIR_BY_EXPORT,
            )
        )  # fmt: skip
    if "rehire" in change.actions:
        found.append(
            Discrepancy(
                DEMOGRAPHICS, TERMINATED_IN_PLANSOURCE_ONLY, number, field="termination_date",
                other_value=str(subscriber.get("termination_date") or ""),
                repair_by=EXPORT_DAG_ID, what_to_do=REPAIR_BY_EXPORT,
            )
        )  # fmt: skip
    if "update" in change.actions:
        for name, value in sorted(change.fields.items()):
            if name in TERMINATION_FIELDS and "terminate" in change.actions:
                continue  # part of the termination above
            if name == "hire_date" and "rehire" in change.actions:
                continue  # part of the rehire above
            found.append(
                Discrepancy(
                    DEMOGRAPHICS, FIELD_DIFFERS, number, field=name,
                    hcm_value=mask_field(name, value), other_value=mask_field(name, subscriber.get(name)),
                    repair_by=EXPORT_DAG_ID, what_to_do=REPAIR_BY_EXPORT,
                )
            )  # fmt: skip
    return found


def _is_test_subscriber(subscriber: dict[str, Any]) -> bool:
    flag = subscriber.get("test_employee")
    return flag is True or str(flag).lower() in ("true", "1", "yes")


# -- PlanSource coverages ↔ HCM payroll deductions (the Deductions Import's direction) ------------------
DEDUCTIONS = "plansource_hcm_deductions"
IMPORT_DAG_ID = "plansource_deductions_import"
MISSING_IN_PAYROLL = "missing_in_payroll"
EXTRA_IN_PAYROLL = "in_payroll_not_in_plansource"
AMOUNT_DIFFERS = "amount_differs"
DATE_DIFFERS = "date_differs"
DEDUCTION_DIFFERS = "deduction_field_differs"
TEST_EMPLOYEE_LOADED = "test_employee_loaded"
COVERAGE_REFUSED = "plansource_record_not_loadable"
CORRECTED_IN_PAYROLL = "corrected_in_payroll"
KIND_TITLES.update(
    {
        MISSING_IN_PAYROLL: "Missing in payroll",
        EXTRA_IN_PAYROLL: "In payroll, not in PlanSource",
        AMOUNT_DIFFERS: "An amount differs",
        DATE_DIFFERS: "A date differs",
        DEDUCTION_DIFFERS: "A deduction field differs",
        TEST_EMPLOYEE_LOADED: "A test employee's deduction is in payroll",
        COVERAGE_REFUSED: "PlanSource's record cannot be loaded",
        CORRECTED_IN_PAYROLL: "Payroll holds a correction PlanSource lacks",
    }
)
REPAIR_BY_IMPORT = (
    "Repairable: run the Deductions Import for this employee with Delta off (Include Employees): it loads "
    "the plan year's coverages as PlanSource holds them."
)
KEY_SEP = "\x1f"  # below every printable character: "person, code, date" keys sort as the tuples do


def deduction_key(row: dict[str, Any]) -> str:
    """(person number, deduction code, effective date) as one byte-ordered key."""
    person, code, effective = row["person_number"], row["deduction_code"], row["effective_date"]
    return KEY_SEP.join((str(person), str(code), str(effective)[:10]))


def deduction_discrepancies(
    key: str,
    expected: dict[str, Any] | None,
    loaded: dict[str, Any] | None,
    test_people: set[str],
    refused: frozenset[str] | set[str] = frozenset(),
) -> list[Discrepancy]:
    """What differs between the deduction the import would load from PlanSource (``expected``, mapped by
    the import's own rules) and the row payroll holds (``loaded``), for one key; either may be missing.
    ``refused``: keys and PlanSource record ids of the records the import refuses (reported on their
    own): payroll's row for one is a correction made in payroll (the Transaction Assistant's, or by
    hand), even when the correction moved its key (a start date, a code)."""
    person, code, effective = key.split(KEY_SEP)
    label = f"{person} {code} {effective}"
    if expected is None:
        assert loaded is not None
        if key in refused or str(loaded.get("plansource_coverage_id") or "") in refused:
            return [Discrepancy(
                DEDUCTIONS, CORRECTED_IN_PAYROLL, label, field="deduction_code", hcm_value=code,
                what_to_do=("Payroll holds a correction of a PlanSource record the import refuses (made with "
                            "the Transaction Assistant, or by hand): correct the record in PlanSource too, "
                            "so that both agree."),
            )]  # fmt: skip
        if person in test_people:
            return [Discrepancy(
                DEDUCTIONS, TEST_EMPLOYEE_LOADED, label, field="deduction_code", hcm_value=code,
                what_to_do=("PlanSource marks this person a test employee, whom the import never loads: "
                            "remove the deduction in payroll."),
            )]  # fmt: skip
        return [Discrepancy(
            DEDUCTIONS, EXTRA_IN_PAYROLL, label, field="deduction_code", hcm_value=code,
            what_to_do=("PlanSource has no coverage for this deduction in the plan year: end-date or remove "
                        "it in payroll, or ask the benefits administrator whether PlanSource lost it."),
        )]  # fmt: skip
    if loaded is None:
        return [Discrepancy(DEDUCTIONS, MISSING_IN_PAYROLL, label, field="deduction_code", other_value=code,
                            repair_by=IMPORT_DAG_ID, what_to_do=REPAIR_BY_IMPORT)]  # fmt: skip
    found: list[Discrepancy] = []
    for column in COMPARED_COLUMNS:
        want, have = comparable(column, expected.get(column)), comparable(column, loaded.get(column))
        if want == have:
            continue
        kind = AMOUNT_DIFFERS if column in MONEY_COLUMNS else DATE_DIFFERS if column in DATE_COLUMNS else (
            DEDUCTION_DIFFERS)  # fmt: skip
        found.append(Discrepancy(DEDUCTIONS, kind, label, field=column, hcm_value=have, other_value=want,
                                 repair_by=IMPORT_DAG_ID, what_to_do=REPAIR_BY_IMPORT))  # fmt: skip
    return found


def refused_coverage(person: str, problem: Any) -> Discrepancy:
    """A PlanSource coverage the import refuses (its error row): not in payroll until someone fixes it."""
    return Discrepancy(
        DEDUCTIONS, COVERAGE_REFUSED, f"{person} {problem.record_key.partition('#')[2]}".strip(),
        field=problem.field, other_value=problem.value,
        what_to_do=f"{problem.reason} Correct it in PlanSource (or with the import's Transaction Assistant).",
    )  # fmt: skip
