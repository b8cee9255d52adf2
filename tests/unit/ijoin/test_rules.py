from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from benefits_hub.ijoin.rules import (
    allocation_problem,
    annual_salary,
    lineup,
    pay_frequency,
    plan_problems,
    plan_version,
    without_protected,
)

AS_OF = date(2026, 11, 1)


@pytest.mark.parametrize(
    ("code", "name"), [("W", "Weekly"), ("B", "Biweekly"), ("S", "Semi-Monthly"), ("M", "Monthly")]
)
def test_plan_code_gives_the_frequency(code: str, name: str) -> None:
    assert pay_frequency(code, [], AS_OF) == (name, None)


def test_unknown_code_is_a_warning() -> None:
    name, warning = pay_frequency("Q", [], AS_OF)
    assert name is None and "'Q'" in warning


def test_variable_takes_the_most_frequent_of_the_last_three_months() -> None:
    payroll = [
        # Many weekly payrolls five to six months ago: outside the window, they must not count.
        *[(date(2026, 5, d), "W") for d in (1, 8, 15, 22, 29)],
        *[(date(2026, 6, d), "W") for d in (5, 12, 19)],
        # The last three months: biweekly, with one weekly.
        ("2026-08-07", "B"), ("2026-08-21", "B"), ("2026/09/04", "B"), ("2026-09-18", "B"),
        ("2026-10-02", "W"), ("2026-10-16", "B"),
    ]  # fmt: skip
    assert pay_frequency("V", payroll, AS_OF) == ("Biweekly", None)


def test_variable_window_starts_three_months_back() -> None:
    assert pay_frequency("V", [(date(2026, 8, 1), "M"), (date(2026, 7, 31), "W")], AS_OF) == ("Monthly", None)


def test_variable_tie_goes_to_the_latest_payroll() -> None:
    assert pay_frequency("V", [(date(2026, 9, 1), "W"), (date(2026, 10, 1), "S")], AS_OF) == (
        "Semi-Monthly",
        None,
    )


def test_variable_without_recent_payroll_warns() -> None:
    name, warning = pay_frequency("V", [(date(2026, 1, 1), "W")], AS_OF)
    assert name is None and "no payroll in the last 3 months" in warning


@pytest.mark.parametrize(
    ("participant", "salary", "source"),
    [
        (
            {"annual_salary": "65000", "computed_compensation": "1", "prior_year_compensation": "2"},
            "65000.00",
            "census",
        ),
        (
            {"annual_salary": None, "computed_compensation": "61000.5", "prior_year_compensation": "2"},
            "61000.50",
            "computed",
        ),
        (
            {"annual_salary": None, "computed_compensation": None, "prior_year_compensation": "58000"},
            "58000.00",
            "prior",
        ),
        (
            {"annual_salary": None, "computed_compensation": None, "prior_year_compensation": None},
            "0.00",
            "none",
        ),
        ({"annual_salary": "0", "computed_compensation": "40000"}, "40000.00", "computed"),
    ],
)
def test_salary_falls_back(participant: dict, salary: str, source: str) -> None:
    value, where = annual_salary(participant)
    assert value == Decimal(salary) and where.startswith(source)


def test_allocations_must_add_up_to_100() -> None:
    assert allocation_problem([{"pct": "60"}, {"pct": "40.00"}]) is None
    assert (
        allocation_problem([{"pct": "60"}, {"pct": "35"}])
        == "Investment allocations add up to 95.00%, not 100%."
    )


FUNDS = [
    {
        "fund_id": "F001",
        "ticker": "VFIAX",
        "fund_name": "Index 500",
        "is_default": 0,
        "is_open": 1,
        "sort_order": 2,
    },
    {
        "fund_id": "F002",
        "ticker": "VTTVX",
        "fund_name": "Target 2035",
        "is_default": 1,
        "is_open": 1,
        "sort_order": 1,
    },
    {
        "fund_id": "F003",
        "ticker": None,
        "fund_name": "Stable Value",
        "is_default": 0,
        "is_open": 0,
        "sort_order": 3,
    },
]
PLAN = {
    "plan_id": "P1",
    "plan_name": "Acme 401(k)",
    "external_plan_id": "X-1",
    "employer_name": "Acme",
    "employer_ein": "12-3456789",
}


def test_plan_problems() -> None:
    assert plan_problems(PLAN, FUNDS) == []  # a closed fund may lack a ticker
    assert plan_problems({**PLAN, "employer_ein": None}, FUNDS) == [
        "Employer EIN is missing in the recordkeeper's plan specifications."
    ]
    no_ticker = [*FUNDS, {"fund_id": "F004", "ticker": "", "fund_name": "New", "is_default": 0, "is_open": 1}]
    assert plan_problems(PLAN, no_ticker) == ["Fund F004 (New) has no ticker."]
    no_default = [{**f, "is_default": 0} for f in FUNDS]
    assert plan_problems(PLAN, no_default) == ["No open fund is marked as the default investment (QDIA)."]


def test_plan_version_and_protected_fields() -> None:
    contacts = [
        {"contact_type": "primary_plan_contact", "name": "Pat", "email": "p@x", "phone": "555-0101"},
        {"contact_type": "employer_sponsor", "name": "Sam", "email": "s@x", "phone": "555-0102"},
    ]
    tiers = [
        {"tier": 2, "contribution_pct": "6", "match_pct": "25"},
        {"tier": 1, "contribution_pct": "3", "match_pct": "100"},
    ]
    version = plan_version(PLAN, contacts, tiers, FUNDS)
    assert [f["fund_id"] for f in version["funds"]] == ["F002", "F001", "F003"]
    assert version["default_investment"] == "F002"
    assert version["match_tiers"][0] == {"contribution_pct": "3.00", "match_pct": "100.00"}
    assert version["phone_contact"] == "555-0101"
    assert set(version["contacts"]) == {"primary_plan_contact", "employer_sponsor"}
    sent = without_protected(
        version, {"do_not_override": ["phone_contact"], "default_investment_never_from_recordkeeper": True}
    )
    assert "phone_contact" not in sent and "default_investment" not in sent and "funds" in sent
    assert lineup(version) == {("F001", "VFIAX", True), ("F002", "VTTVX", True), ("F003", None, False)}


def test_a_lineup_closing_ijoins_locked_default_could_never_be_activated() -> None:
    from benefits_hub.ijoin.rules import never_activatable

    funds = [{"fund_id": "F001", "is_open": True}, {"fund_id": "F007", "is_open": False}]
    locked = {"default_investment_never_from_recordkeeper": True, "active": {"default_investment": "F007"}}
    reason = never_activatable("P0004", {"funds": funds}, locked)
    assert reason is not None and "closes F007" in reason and "no review was requested" in reason
    assert "Keep F007 open in the recordkeeper" in reason
    reopened = [{**f, "is_open": True} for f in funds]
    assert never_activatable("P0004", {"funds": reopened}, locked) is None
    unlocked = {**locked, "default_investment_never_from_recordkeeper": False}
    assert never_activatable("P0004", {"funds": funds}, unlocked) is None  # the payload's default rules


def test_participant_changes_names_what_a_sync_would_change_in_ijoin() -> None:
    from benefits_hub.ijoin.rules import participant_changes

    held = {
        "participant_id": "P0001-000001", "first_name": "Ann", "status": "A", "annual_salary": 52000.0,
        "contribution_rates": {"pretax_pct": 6.0}, "allocations": [{"fund_id": "F1", "pct": 100.0}],
    }  # fmt: skip
    same = {**held, "annual_salary": "52000.00", "contribution_rates": {"pretax_pct": "6", "roth_pct": None},
            "allocations": [{"fund_id": "F1", "pct": "100.00"}]}  # fmt: skip
    assert participant_changes(same, held) == []  # amounts by value, a missing rate as 0
    leaving = {**same, "status": "T", "contribution_rates": {"pretax_pct": "0"}}
    assert participant_changes(leaving, held) == ["status", "contribution_rates"]
    unsendable = {
        k: v for k, v in same.items() if k != "allocations"
    }  # allocations not sent: iJoin keeps its
    assert participant_changes(unsendable, held) == []
    moved = {**same, "allocations": [{"fund_id": "F2", "pct": "100"}]}
    assert participant_changes(moved, held) == ["allocations"]
