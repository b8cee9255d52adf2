"""Recordkeeper → iJoin rules (Relius rules iJoin applies): pure functions, no Airflow, no I/O.

- :func:`plan_version`: a plan's specifications, contacts, matching tiers and fund line-up in
  iJoin's shape, without the fields iJoin says not to override.
- :func:`plan_problems`: what blocks a plan (no EIN, an open fund with no ticker, no default fund).
- :func:`pay_frequency`: the plan's code, and for 'V' (variable) the most frequent pay frequency of
  the participant's payroll over the last 3 months.
- :func:`annual_salary`: census annual salary, else computed annual compensation, else the prior plan
  year's, else 0.
- :func:`allocation_problem`: allocations must add up to 100%.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from benefits_hub.values import ValueProblem, calendar_date, money, number

PAY_FREQUENCIES = {"W": "Weekly", "B": "Biweekly", "S": "Semi-Monthly", "M": "Monthly"}
VARIABLE = "V"
CONTACT_TYPES = ("primary_administrator", "employer_sponsor", "primary_plan_contact")
HUNDRED = Decimal("100.00")
EIN_PATTERN = re.compile(r"\d{2}-?\d{7}")


def months_before(day: date, months: int) -> date:
    month = day.month - months
    year = day.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    # The same day of that month, or its last day when shorter (Nov 30 -> Aug 30, May 31 -> Feb 28).
    for candidate in range(day.day, 27, -1):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    return date(year, month, min(day.day, 28))


def pay_frequency(
    plan_code: str | None, payroll: Iterable[tuple[Any, str]], as_of: date
) -> tuple[str | None, str | None]:
    """(pay frequency name, a warning or None) for one participant.

    ``payroll`` holds (pay date, pay frequency code) rows for this participant in this plan.
    """
    code = (plan_code or "").strip().upper()
    if code != VARIABLE:
        name = PAY_FREQUENCIES.get(code)
        return (name, None) if name else (None, f"The plan's pay frequency code '{code}' is not known.")
    since = months_before(as_of, 3)
    recent = [
        (day, str(freq).strip().upper())
        for day, freq in ((_pay_date(raw), freq) for raw, freq in payroll)
        if day is not None and since <= day <= as_of
    ]
    counts = Counter(freq for _, freq in recent if freq in PAY_FREQUENCIES)
    if not counts:
        return None, "Variable pay frequency, and no payroll in the last 3 months to take it from."
    top = max(counts.values())
    tied = {freq for freq, n in counts.items() if n == top}
    # A tie goes to the frequency of the most recent payroll among the tied ones.
    latest = max((day, freq) for day, freq in recent if freq in tied)[1]
    return PAY_FREQUENCIES[latest], None


def _pay_date(value: Any) -> date | None:
    # A payroll row whose date cannot be read tells nothing about the last 3 months: left out.
    try:
        return calendar_date(value)
    except ValueProblem:
        return None


def annual_salary(participant: dict[str, Any]) -> tuple[Decimal, str]:
    """(salary, where it came from): census → computed compensation → prior plan year → 0.

    A value that is not an amount is passed over like an empty one, and the source says so.
    """
    unreadable: list[str] = []
    for field, source in (
        ("annual_salary", "census annual salary"),
        ("computed_compensation", "computed annual compensation"),
        ("prior_year_compensation", "prior plan year compensation"),
    ):
        try:
            value = money(participant.get(field))
        except ValueProblem:
            unreadable.append(source)
            continue
        if value is not None and value > 0:
            return value, source + (f" ({unreadable[0]} is not a number)" if unreadable else "")
    return Decimal("0.00"), "none on record (0)"


def allocation_problem(allocations: Iterable[dict[str, Any]]) -> str | None:
    """Allocations must name each fund once, with percentages from 0 to 100 that add up to 100%."""
    total = Decimal("0")
    seen: set[str] = set()
    for allocation in allocations:
        fund = str(allocation.get("fund_id") or "").strip()
        try:
            # Exact, not to the cent: three allocations of 33.333, 33.333 and 33.334 add up to 100.
            pct = number(allocation.get("pct")) or Decimal("0")
        except ValueProblem as exc:
            return f"The allocation to fund {fund or '(none)'} {exc}."
        if pct < 0 or pct > HUNDRED:
            return f"The allocation to fund {fund or '(none)'} is {pct}%; each must be from 0 to 100%."
        if fund and fund in seen:
            return f"Fund {fund} is allocated twice; each fund may appear once."
        seen.add(fund)
        total += pct
    if total == HUNDRED:
        return None
    if not seen:  # seen holds every allocation's fund, "" for one that names none
        return "There are no investment allocations; they must add up to 100%."
    cents = total.quantize(Decimal("0.01"))
    return f"Investment allocations add up to {cents if cents == total else total}%, not 100%."


def plan_problems(plan: dict[str, Any], funds: list[dict[str, Any]]) -> list[str]:
    """What stops a plan from syncing, each in the words iJoin's Activity Monitor would use."""
    problems = []
    ein = str(plan.get("employer_ein") or "").strip()
    if not ein:
        problems.append("Employer EIN is missing in the recordkeeper's plan specifications.")
    elif not EIN_PATTERN.fullmatch(ein):
        problems.append(
            "Employer EIN is not 9 digits written NN-NNNNNNN in the recordkeeper's plan specifications."
        )
    open_funds = [f for f in funds if _flag(f.get("is_open"))]
    if not open_funds:
        problems.append("The plan has no open fund in its line-up.")
    for fund in open_funds:
        if not (fund.get("ticker") or "").strip():
            problems.append(f"Fund {fund['fund_id']} ({fund.get('fund_name') or 'no name'}) has no ticker.")
    if open_funds and not any(_flag(f.get("is_default")) for f in open_funds):
        problems.append("No open fund is marked as the default investment (QDIA).")
    return problems


def _flag(value: Any) -> bool:
    return value in (1, True, "1", "true", "True")


def _pct(value: Any) -> str | None:
    amount = money(value)
    return None if amount is None else str(amount)


def plan_version(
    plan: dict[str, Any],
    contacts: list[dict[str, Any]],
    tiers: list[dict[str, Any]],
    funds: list[dict[str, Any]],
) -> dict[str, Any]:
    """The recordkeeper's plan in iJoin's version shape."""
    by_type = {c["contact_type"]: c for c in contacts}
    ordered = sorted(funds, key=lambda f: (f.get("sort_order") or 0, f["fund_id"]))
    default = next(
        (f["fund_id"] for f in ordered if _flag(f.get("is_default")) and _flag(f.get("is_open"))), None
    )
    return {
        "plan_name": plan.get("plan_name"),
        "external_plan_id": plan.get("external_plan_id"),
        "employer_name": plan.get("employer_name"),
        "employer_ein": plan.get("employer_ein"),
        "phone_contact": (by_type.get("primary_plan_contact") or {}).get("phone"),
        "contacts": {
            kind: {k: by_type[kind].get(k) for k in ("name", "email", "phone")}
            for kind in CONTACT_TYPES
            if kind in by_type
        },
        "match_tiers": [
            {"contribution_pct": _pct(t.get("contribution_pct")), "match_pct": _pct(t.get("match_pct"))}
            for t in sorted(tiers, key=lambda t: t["tier"])
        ],
        "funds": [
            {
                "fund_id": f["fund_id"],
                "ticker": f.get("ticker"),
                "fund_name": f.get("fund_name"),
                "asset_class": f.get("asset_class"),
                "is_default": _flag(f.get("is_default")),
                "is_open": _flag(f.get("is_open")),
            }
            for f in ordered
        ],
        "default_investment": default,
    }


def without_protected(version: dict[str, Any], ijoin_plan: dict[str, Any] | None) -> dict[str, Any]:
    """Leave out what iJoin says the recordkeeper must not override."""
    if not ijoin_plan:
        return dict(version)
    protected = set(ijoin_plan.get("do_not_override") or [])
    if ijoin_plan.get("default_investment_never_from_recordkeeper"):
        protected.add("default_investment")
    return {k: v for k, v in version.items() if k not in protected}


def never_activatable(plan_id: str, payload: dict[str, Any], ijoin_plan: dict[str, Any] | None) -> str | None:
    """Why iJoin could never activate a draft of ``payload``, in words saying what to change; else None.

    The one case the hub can see coming: iJoin keeps its own default investment for the plan (locked
    against the recordkeeper) and the new line-up closes or drops that fund, which iJoin's activation
    refuses ("Default investment is not an open fund of the line-up")."""
    if not ijoin_plan or not ijoin_plan.get("default_investment_never_from_recordkeeper"):
        return None
    held = (ijoin_plan.get("active") or ijoin_plan.get("draft") or {}).get("default_investment")
    open_funds = {f["fund_id"] for f in payload.get("funds") or [] if f.get("is_open")}
    if not held or held in open_funds:
        return None
    return (
        f"Plan {plan_id}: the new fund line-up closes {held}, which iJoin keeps as the plan's default "
        "investment (locked in iJoin), so iJoin could never activate it and no review was requested. "
        f"Keep {held} open in the recordkeeper, or have the default investment changed in iJoin's Plan "
        "Details first; then run the Plan Sync for this plan."
    )


def lineup(version: dict[str, Any] | None) -> set[tuple[str, str | None, bool]]:
    """The fund line-up as iJoin compares it: which funds, their tickers, open or closed."""
    if not version:
        return set()
    return {(f["fund_id"], f.get("ticker"), bool(f.get("is_open"))) for f in version.get("funds") or []}


# What the Participant Sync sends of a participant and iJoin keeps, compared one by one (balances move
# every day and are iJoin's copy of a statement, not a setting: they are not compared).
PARTICIPANT_FIELDS = (
    "first_name", "last_name", "birth_date", "hire_date", "termination_date", "status", "email",
    "pay_frequency", "annual_salary",
)  # fmt: skip
RATE_FIELDS = ("pretax_pct", "roth_pct", "aftertax_pct")


def comparable(value: Any) -> Any:
    """A value as both systems mean it: numbers by amount (iJoin keeps floats, the recordkeeper
    decimals), blanks alike, mappings and lists recursively."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).normalize()
    if isinstance(value, str):
        try:
            if value.strip() and value.strip()[0] in "-0123456789" and not _looks_like_date(value):
                return Decimal(value.strip()).normalize()
        except InvalidOperation:
            pass
        return value.strip()
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    return value


def _looks_like_date(value: str) -> bool:
    return len(value) >= 8 and value[4:5] == "-"


def _allocations(rows: Any) -> dict[str, Any]:
    return {str(a.get("fund_id")): comparable(a.get("pct")) for a in rows or []}


def rates_of(participant: dict[str, Any]) -> dict[str, Any]:
    """A participant's contribution rates, a missing rate as 0 (both systems mean "none")."""
    rates = participant.get("contribution_rates") or {}
    return {k: rates.get(k) or 0 for k in RATE_FIELDS}


def participant_changes(expected: dict[str, Any], held: dict[str, Any]) -> list[str]:
    """The fields the Participant Sync would change in iJoin's record ``held`` by sending ``expected``
    (its payload): census fields, ``contribution_rates``, ``allocations`` (only when it sends them).
    Balances are not counted: they move every day and are iJoin's copy of a statement."""
    changed = [
        name for name in PARTICIPANT_FIELDS if comparable(expected.get(name)) != comparable(held.get(name))
    ]
    if comparable(rates_of(expected)) != comparable(rates_of(held)):
        changed.append("contribution_rates")
    sent = expected.get("allocations")  # absent: the sync leaves iJoin's own allocations alone
    if "allocations" in expected and _allocations(sent) != _allocations(held.get("allocations")):
        changed.append("allocations")
    return changed
