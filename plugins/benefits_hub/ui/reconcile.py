"""A reconciliation's discrepancies on a page, as pure functions: which rows a filter shows, which of
them a Repair may send (only those an integration can repair, never a value the browser made up)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from benefits_hub.deductions.importer import FIELD_WORDS
from benefits_hub.ijoin.drafts import SPEC_LABELS
from benefits_hub.reconciliation.ijoin_rules import RECORDKEEPER_IJOIN
from benefits_hub.reconciliation.repair import REPAIR_DAG_ID, REPAIR_DAGS, repair_subject
from benefits_hub.reconciliation.rules import DEDUCTIONS, DEMOGRAPHICS, KIND_TITLES

RECONCILE_DAG_ID = "hub_reconciliation"
DISCREPANCY_FILE = "discrepancies.csv"
SHOWN = 1000  # rows on the page; the file has them all


def matching(rows: Iterable[dict[str, str]], *, kind: str = "", query: str = "") -> list[dict[str, str]]:
    """The rows of ``kind`` (all when empty) holding ``query`` (an employee number, a field...)."""
    needle = query.strip().casefold()
    return [
        row for row in rows
        if (not kind or row.get("kind") == kind)
        and (not needle or needle in " ".join([*map(str, row.values()), field_title(row.get("field", ""))])
             .casefold())
    ]  # fmt: skip


def repairable(row: dict[str, str]) -> bool:
    return row.get("repair") in REPAIR_DAGS


# The field names the integrations already put in clerk words, and the few more a discrepancy names.
FIELD_TITLES = {
    **FIELD_WORDS, **SPEC_LABELS,
    "effective_date": "Start date", "end_date": "End date", "benefit_name": "Benefit",
    "funds": "Fund line-up", "contribution_rates": "Contribution rates", "ssn": "SSN",
    "annual_salary": "Annual salary", "plansource_subscriber_id": "PlanSource subscriber id",
}  # fmt: skip


def field_title(field: str) -> str:
    """A discrepancy's field in a clerk's words: "employee_amount" → "Employee premium", "city" →
    "City"; the discrepancy file keeps the field's own name."""
    if not field:
        return ""
    return FIELD_TITLES.get(field) or field.replace("_", " ").capitalize()


#: each pair's two systems, in the order of the discrepancy file's two value columns
SIDES = {
    DEMOGRAPHICS: ("HCM", "PlanSource"),
    DEDUCTIONS: ("Payroll", "PlanSource"),
    RECORDKEEPER_IJOIN: ("Recordkeeper", "iJoin"),
}


def values_of(row: dict[str, str]) -> list[tuple[str, str]]:
    """A discrepancy's values, each with the system that holds it ("HCM", "Springfield"); an empty
    value on one side (a record missing there) is left out."""
    sides = SIDES.get(row.get("pair", ""), ("First system", "Second system"))
    values = (row.get("hcm_value", ""), row.get("other_value", ""))
    return [(side, value) for side, value in zip(sides, values, strict=True) if value]


def to_repair(rows: Sequence[dict[str, str]], chosen: Iterable[str]) -> dict[str, list[str]]:
    """{repair DAG: employees or plans} for the chosen discrepancies an integration can repair: each
    once per repair, in order; nothing the page did not list as repairable."""
    picked = set(chosen)
    found: dict[str, set[str]] = {}
    for row in rows:
        if repairable(row) and row["record_key"] in picked:
            dag_id = REPAIR_DAGS[row["repair"]]
            found.setdefault(dag_id, set()).add(repair_subject(dag_id, row["record_key"]))
    return {dag_id: sorted(subjects) for dag_id, subjects in sorted(found.items())}


@dataclass(frozen=True)
class Night:
    """One finished reconciliation, for the history chart."""

    run_id: str
    ended: datetime
    discrepancies: int


def history(runs: Iterable[tuple[Any, dict[str, Any]]], nights: int = 14) -> list[Night]:
    """The last ``nights`` finished reconciliations of everyone, from (run, conf) pairs, oldest first (a
    run narrowed to a few people is no night's count)."""
    finished = [
        Night(run.run_id, run.end_date, int(run.summary["discrepancies"]))
        for run, conf in runs
        if run.end_date and run.summary and "discrepancies" in run.summary
        and not (conf or {}).get("include_employees") and not (conf or {}).get("plan_ids")
    ]  # fmt: skip
    return sorted(finished, key=lambda night: night.ended)[-nights:]


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind.replace("_", " "))


__all__ = [
    "REPAIR_DAGS",
    "REPAIR_DAG_ID",
    "SIDES",
    "Night",
    "field_title",
    "history",
    "kind_title",
    "matching",
    "repairable",
    "to_repair",
    "values_of",
]  # fmt: skip
