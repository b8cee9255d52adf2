"""Recordkeeper ↔ iJoin: each kind of discrepancy, by the Plan Sync's and Participant Sync's own rules."""

from __future__ import annotations

import copy
from typing import Any

from benefits_hub.ijoin.rules import plan_version
from benefits_hub.reconciliation import ijoin_rules as rules
from benefits_hub.reconciliation.repair import repair_subject

PLAN = {"plan_id": "P1", "plan_name": "Acme 401(k)", "external_plan_id": "X1", "employer_name": "Acme",
        "employer_ein": "12-3456789", "pay_frequency_code": "B"}  # fmt: skip
CONTACTS = [
    {"contact_type": "primary_plan_contact", "name": "Ann", "email": "ann@acme.test", "phone": "555-1"}
]
TIERS = [{"tier": 1, "contribution_pct": "3.00", "match_pct": "100.00"}]
FUNDS = [
    {"fund_id": "F1", "ticker": "AAA", "fund_name": "Index", "asset_class": "Equity", "is_default": 1,
     "is_open": 1, "sort_order": 1},
    {"fund_id": "F2", "ticker": "BBB", "fund_name": "Bond", "asset_class": "Bond", "is_default": 0,
     "is_open": 1, "sort_order": 2},
]  # fmt: skip
SOURCE = {"plan": PLAN, "contacts": CONTACTS, "match_tiers": TIERS, "funds": FUNDS}


def in_ijoin(**changes: Any) -> dict[str, Any]:
    """iJoin's plan as a Plan Sync leaves it: numbers as floats, funds in fund-id order, its own phone."""
    version = plan_version(PLAN, CONTACTS, TIERS, FUNDS)
    version["match_tiers"] = [{"contribution_pct": 3.0, "match_pct": 100.0}]
    version["phone_contact"] = "(800) 555-0001"
    version.update(changes)
    return {"plan_id": "P1", "status": "active", "active": {"version_id": "P1-v1", **version}, "draft": None,
            "do_not_override": ["phone_contact"]}  # fmt: skip


def kinds(found: list[Any]) -> list[tuple[str, str]]:
    return [(d.kind, d.field) for d in found]


def test_a_plan_as_the_sync_left_it_is_in_step_whatever_ijoin_protects() -> None:
    assert rules.plan_discrepancies("P1", SOURCE, in_ijoin()) == []


def test_a_plan_on_one_side_only() -> None:
    (missing,) = rules.plan_discrepancies("P1", SOURCE, None)
    assert missing.kind == rules.PLAN_MISSING_IN_IJOIN and not missing.repair_by
    assert "Advisor Portal" in missing.what_to_do
    (extra,) = rules.plan_discrepancies("P9", None, in_ijoin())
    assert extra.kind == rules.PLAN_NOT_IN_RECORDKEEPER and not extra.repair_by


def test_a_plan_the_sync_refuses_says_what_to_correct() -> None:
    source = {**SOURCE, "plan": {**PLAN, "employer_ein": None}}
    (refused,) = rules.plan_discrepancies("P1", source, in_ijoin())
    assert refused.kind == rules.PLAN_NOT_SENDABLE and "Employer EIN is missing" in refused.what_to_do


def test_a_spec_or_contact_change_is_repaired_by_the_plan_sync() -> None:
    ijoin = in_ijoin(employer_name="Acme Old", match_tiers=[{"contribution_pct": 4.0, "match_pct": 100.0}])
    found = rules.plan_discrepancies("P1", SOURCE, ijoin)
    assert kinds(found) == [
        (rules.PLAN_FIELD_DIFFERS, "employer_name"),
        (rules.PLAN_FIELD_DIFFERS, "match_tiers"),
    ]
    assert (found[0].hcm_value, found[0].other_value) == ("Acme", "Acme Old")
    assert {d.repair_by for d in found} == {rules.PLAN_SYNC_DAG_ID}


def test_a_new_lineup_is_repaired_by_the_plan_sync_unless_its_draft_waits_for_review() -> None:
    ijoin = in_ijoin()
    ijoin["active"]["funds"] = [f for f in ijoin["active"]["funds"] if f["fund_id"] == "F1"]
    (lineup,) = rules.plan_discrepancies("P1", SOURCE, ijoin)
    assert lineup.kind == rules.LINEUP_DIFFERS and lineup.repair_by == rules.PLAN_SYNC_DAG_ID
    assert (lineup.hcm_value, lineup.other_value) == ("F1 (open), F2 (open)", "F1 (open)")
    ijoin["draft"] = {**copy.deepcopy(in_ijoin()["active"]), "version_id": "P1-v2"}
    (waiting,) = rules.plan_discrepancies("P1", SOURCE, ijoin)
    assert waiting.kind == rules.DRAFT_AWAITING_REVIEW and not waiting.repair_by
    assert "P1-v2" in waiting.what_to_do and "Required Actions" in waiting.what_to_do
    # A spec the draft holds too (iJoin drafts the whole version) waits for the same review.
    ijoin["draft"]["employer_name"] = PLAN["employer_name"]
    ijoin["active"]["employer_name"] = "Acme Old"
    assert kinds(rules.plan_discrepancies("P1", SOURCE, ijoin)) == [
        (rules.DRAFT_AWAITING_REVIEW, "employer_name"), (rules.DRAFT_AWAITING_REVIEW, "funds")
    ]  # fmt: skip


def test_a_renamed_fund_is_a_field_difference_not_a_new_lineup() -> None:
    ijoin = in_ijoin()
    ijoin["active"]["funds"][1]["fund_name"] = "Bond (old name)"
    assert kinds(rules.plan_discrepancies("P1", SOURCE, ijoin)) == [(rules.PLAN_FIELD_DIFFERS, "funds")]


def test_a_plan_being_set_up_is_compared_with_its_draft() -> None:
    ijoin = in_ijoin()
    ijoin.update(status="setup", active=None, draft={**ijoin["active"], "employer_ein": None})
    assert kinds(rules.plan_discrepancies("P1", SOURCE, ijoin)) == [
        (rules.PLAN_FIELD_DIFFERS, "employer_ein")
    ]


EXPECTED = {
    "participant_id": "P1-000001", "first_name": "Ann", "last_name": "Lee", "birth_date": "1980-02-03",
    "hire_date": "2020-01-06", "termination_date": None, "status": "A", "email": None,
    "pay_frequency": "Biweekly", "annual_salary": "65000.00", "salary_source": "census annual salary",
    "balances": [{"fund_id": "F1", "money_source": "PRETAX", "balance": "1200.50", "as_of": "2026-11-01"}],
    "allocations": [{"fund_id": "F1", "pct": "60.000"}, {"fund_id": "F2", "pct": "40.000"}],
    "contribution_rates": {"pretax_pct": "6.00", "roth_pct": "0.00", "aftertax_pct": None},
    "sync_status": "Synchronized", "sync_messages": [],
}  # fmt: skip


def held(**changes: Any) -> dict[str, Any]:
    """iJoin's record of the participant after a sync: floats, its own timestamps, a balance moved on."""
    record = {
        **EXPECTED, "annual_salary": 65000.0,
        "balances": [{"fund_id": "F1", "money_source": "PRETAX", "balance": 1250.0, "as_of": "2026-12-01"}],
        "allocations": [{"fund_id": "F1", "pct": 60.0}, {"fund_id": "F2", "pct": 40.0}],
        "contribution_rates": {"pretax_pct": 6.0, "roth_pct": 0.0, "aftertax_pct": 0.0},
        "created_at": "2026-12-01 10:00:00", "updated_at": "2026-12-01 10:00:00",
    }  # fmt: skip
    record.update(changes)
    return record


def test_a_participant_as_the_sync_left_it_is_in_step() -> None:
    assert rules.participant_discrepancies("P1", "P1-000001", EXPECTED, held()) == []


def test_a_participant_on_one_side_only() -> None:
    (missing,) = rules.participant_discrepancies("P1", "P1-000001", EXPECTED, None)
    assert missing.kind == rules.PARTICIPANT_MISSING_IN_IJOIN
    assert (missing.record_key, missing.repair_by) == ("P1/P1-000001", rules.PARTICIPANT_SYNC_DAG_ID)
    (extra,) = rules.participant_discrepancies("P1", "P1-000009", None, held())
    assert extra.kind == rules.PARTICIPANT_NOT_IN_RECORDKEEPER and not extra.repair_by


def test_census_allocations_and_rates_each_differ_on_their_own() -> None:
    found = rules.participant_discrepancies(
        "P1", "P1-000001", EXPECTED,
        held(last_name="Li", birth_date="1980-02-04", allocations=[{"fund_id": "F1", "pct": 100.0}],
             contribution_rates={"pretax_pct": 4.0, "roth_pct": 0.0, "aftertax_pct": 0.0}),
    )  # fmt: skip
    assert kinds(found) == [
        (rules.PARTICIPANT_FIELD_DIFFERS, "last_name"),
        (rules.PARTICIPANT_FIELD_DIFFERS, "birth_date"),
        (rules.RATES_DIFFER, "contribution_rates"),
        (rules.ALLOCATIONS_DIFFER, "allocations"),
    ]
    birth = found[1]
    assert "1980" not in birth.hcm_value and "1980" not in birth.other_value  # masked, never the date


def test_an_election_not_yet_written_back_is_not_for_the_sync_to_overwrite() -> None:
    changed = held(contribution_rates={"pretax_pct": 8.0, "roth_pct": 2.0, "aftertax_pct": 0.0})
    (elected,) = rules.participant_discrepancies("P1", "P1-000001", EXPECTED, changed, {"contribution_rate"})
    assert elected.kind == rules.ELECTION_NOT_WRITTEN_BACK and not elected.repair_by
    assert "Enrollment Writeback" in elected.what_to_do


def test_allocations_the_sync_never_sends_say_so() -> None:
    expected = {k: v for k, v in EXPECTED.items() if k != "allocations"}
    expected["sync_messages"] = [
        "Investment allocations add up to 95.000%, not 100%. Allocations were not sent."
    ]
    (found,) = rules.participant_discrepancies("P1", "P1-000001", expected, held())
    assert found.kind == rules.ALLOCATIONS_NOT_SENDABLE and "95.000%" in found.what_to_do


def test_a_repair_is_narrowed_to_the_plan_of_each_ijoin_discrepancy() -> None:
    assert repair_subject("ijoin_participant_repair", "P1/P1-000001") == "P1"
    assert repair_subject("ijoin_plan_repair", "P1") == "P1"
    assert repair_subject("plansource_deductions_repair", "E000012 MED 2026-01-01") == "E000012"


def test_the_run_summary_names_each_ijoin_count_in_words() -> None:
    from benefits_hub.ui.detail import field_label

    assert field_label("recordkeeper_ijoin__draft_awaiting_review") == (
        "Recordkeeper ↔ iJoin plans and participants: In iJoin's draft, waiting for its review"
    )
