"""A reconciliation's discrepancies on a page, as pure functions: which rows a filter shows, which of
them a Repair may send (only those an integration can repair, never a value the browser made up)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from benefits_hub.reconciliation.repair import REPAIR_DAG_ID, REPAIR_DAGS
from benefits_hub.reconciliation.rules import KIND_TITLES

RECONCILE_DAG_ID = "hub_reconciliation"
DISCREPANCY_FILE = "discrepancies.csv"
SHOWN = 1000  # rows on the page; the file has them all


def matching(rows: Iterable[dict[str, str]], *, kind: str = "", query: str = "") -> list[dict[str, str]]:
    """The rows of ``kind`` (all when empty) holding ``query`` (an employee number, a field...)."""
    needle = query.strip().casefold()
    return [
        row for row in rows
        if (not kind or row.get("kind") == kind)
        and (not needle or needle in " ".join(str(v) for v in row.values()).casefold())
    ]  # fmt: skip


def repairable(row: dict[str, str]) -> bool:
    return row.get("repair") in REPAIR_DAGS


def employee_of(record_key: str) -> str:
    """The employee a discrepancy is about: a deduction's key is "employee code start date"."""
    return record_key.split(" ", 1)[0]


def to_repair(rows: Sequence[dict[str, str]], chosen: Iterable[str]) -> dict[str, list[str]]:
    """{repair DAG: employees} for the chosen discrepancies an integration can repair: each employee
    once per repair, in order; nothing the page did not list as repairable."""
    picked = set(chosen)
    found: dict[str, set[str]] = {}
    for row in rows:
        if repairable(row) and row["record_key"] in picked:
            found.setdefault(REPAIR_DAGS[row["repair"]], set()).add(employee_of(row["record_key"]))
    return {dag_id: sorted(people) for dag_id, people in sorted(found.items())}


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
        and not (conf or {}).get("include_employees")
    ]  # fmt: skip
    return sorted(finished, key=lambda night: night.ended)[-nights:]


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind.replace("_", " "))


__all__ = [
    "REPAIR_DAGS", "REPAIR_DAG_ID", "Night", "employee_of", "history", "kind_title", "matching", "repairable",
    "to_repair",
]  # fmt: skip
