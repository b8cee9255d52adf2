"""Recordkeeper ↔ iJoin reconciliation rules: is iJoin in step with the recordkeeper? Pure functions.

Each plan is built by the Plan Sync's own rules (:func:`plan_version`, less what iJoin says not to
override) and compared with the version iJoin holds (the active one; for a plan still being set up, its
draft). Each participant is built by the Participant Sync's own rules (:func:`participant_payload`) and
compared with iJoin's record field by field. What the sync would change is a discrepancy; what no sync
can change (a plan iJoin lacks, a draft waiting for its review, an election not yet written back) says
what a person must do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benefits_hub import codec
from benefits_hub.ijoin.rules import (
    PARTICIPANT_FIELDS,
    comparable,
    lineup,
    participant_changes,
    plan_problems,
    plan_version,
    rates_of,
    without_protected,
)
from benefits_hub.pii import mask_field
from benefits_hub.reconciliation.rules import KIND_TITLES, Discrepancy

RECORDKEEPER_IJOIN = "recordkeeper_ijoin"
PLAN_SYNC_DAG_ID = "ijoin_plan_sync"
PARTICIPANT_SYNC_DAG_ID = "ijoin_participant_sync"

PLAN_MISSING_IN_IJOIN = "plan_missing_in_ijoin"
PLAN_NOT_IN_RECORDKEEPER = "plan_in_ijoin_not_in_recordkeeper"
PLAN_NOT_SENDABLE = "plan_not_sendable"
PLAN_FIELD_DIFFERS = "plan_field_differs"
LINEUP_DIFFERS = "lineup_differs"
DRAFT_AWAITING_REVIEW = "draft_awaiting_review"
PARTICIPANT_MISSING_IN_IJOIN = "participant_missing_in_ijoin"
PARTICIPANT_NOT_IN_RECORDKEEPER = "participant_in_ijoin_not_in_recordkeeper"
PARTICIPANT_FIELD_DIFFERS = "participant_field_differs"
ALLOCATIONS_DIFFER = "allocations_differ"
RATES_DIFFER = "contribution_rates_differ"
ALLOCATIONS_NOT_SENDABLE = "allocations_not_sendable"
ELECTION_NOT_WRITTEN_BACK = "election_not_written_back"
KIND_TITLES.update(
    {
        PLAN_MISSING_IN_IJOIN: "Plan missing in iJoin",
        PLAN_NOT_IN_RECORDKEEPER: "Plan in iJoin, not in the recordkeeper",
        PLAN_NOT_SENDABLE: "The recordkeeper's plan cannot be sent",
        PLAN_FIELD_DIFFERS: "A plan field differs",
        LINEUP_DIFFERS: "The fund line-up differs",
        DRAFT_AWAITING_REVIEW: "In iJoin's draft, waiting for its review",
        PARTICIPANT_MISSING_IN_IJOIN: "Participant missing in iJoin",
        PARTICIPANT_NOT_IN_RECORDKEEPER: "Participant in iJoin, not in the recordkeeper",
        PARTICIPANT_FIELD_DIFFERS: "A participant field differs",
        ALLOCATIONS_DIFFER: "Investment allocations differ",
        RATES_DIFFER: "Contribution rates differ",
        ALLOCATIONS_NOT_SENDABLE: "The recordkeeper's allocations cannot be sent",
        ELECTION_NOT_WRITTEN_BACK: "An iJoin election is not yet in the recordkeeper",
    }
)
REPAIR_BY_PLAN_SYNC = "Repairable: run the iJoin Plan Sync for this plan."
DRAFT_NOTE = " On an active plan iJoin keeps the new line-up as a draft, for a plan administrator's review."
REPAIR_BY_PARTICIPANT_SYNC = "Repairable: run the iJoin Participant Sync for this plan."


def plan_key(plan_id: str) -> str:
    return plan_id


def participant_key(plan_id: str, participant_id: str) -> str:
    """ "P0001/P0001-000002": a participant's record key (the plan first, so a repair knows its plan)."""
    return f"{plan_id}/{participant_id}"


def plan_of(record_key: str) -> str:
    return record_key.split("/", 1)[0]


def shown(value: Any) -> str:
    """A value in a discrepancy cell: text as it is, structures as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return codec.dumps(value).decode()
    return str(value)


def _funds_in_words(version: dict[str, Any] | None) -> str:
    return ", ".join(
        f"{fund} ({'open' if is_open else 'closed'})" for fund, _ticker, is_open in sorted(lineup(version))
    )


def _funds_by_id(funds: Iterable[dict[str, Any]] | None) -> dict[str, Any]:
    return {f["fund_id"]: comparable({k: v for k, v in f.items()}) for f in funds or []}


def plan_discrepancies(
    plan_id: str, recordkeeper: dict[str, Any] | None, ijoin_plan: dict[str, Any] | None
) -> list[Discrepancy]:
    """What differs between the recordkeeper's plan (``plan``, ``contacts``, ``match_tiers``, ``funds``)
    and iJoin's (``GET /plans/{id}``), by the Plan Sync's own rules; either may be missing."""
    pair = RECORDKEEPER_IJOIN
    if recordkeeper is None:
        return [Discrepancy(
            pair, PLAN_NOT_IN_RECORDKEEPER, plan_key(plan_id),
            other_value=str((ijoin_plan or {}).get("status")),
            what_to_do=("iJoin has a plan the recordkeeper does not: check the plan id in iJoin's Advisor "
                        "Portal, or close the plan there. No integration removes an iJoin plan."),
        )]  # fmt: skip
    if ijoin_plan is None:
        return [Discrepancy(
            pair, PLAN_MISSING_IN_IJOIN, plan_key(plan_id),
            hcm_value=str(recordkeeper["plan"].get("plan_name") or ""),
            what_to_do=("Add the plan in iJoin's Advisor Portal (the Plan Sync never creates a plan); "
                        "the New Plan Watch then starts its Plan Sync."),
        )]  # fmt: skip
    problems = plan_problems(recordkeeper["plan"], recordkeeper["funds"])
    if problems:
        return [
            Discrepancy(pair, PLAN_NOT_SENDABLE, plan_key(plan_id), field="plan",
                        what_to_do=f"{problem} Correct it in the recordkeeper; the Plan Sync reports it "
                        "as an error until then.")
            for problem in problems
        ]  # fmt: skip
    version = plan_version(
        recordkeeper["plan"], recordkeeper["contacts"], recordkeeper["match_tiers"], recordkeeper["funds"]
    )
    payload = without_protected(version, ijoin_plan)
    active = ijoin_plan.get("active")
    draft = ijoin_plan.get("draft")
    held = active or draft or {}  # a plan being set up keeps what was sent in its draft
    waiting = bool(active and draft) and lineup(payload) == lineup(draft)
    found: list[Discrepancy] = []
    for name in sorted(set(payload) - {"funds"}):
        if comparable(payload[name]) == comparable(held.get(name)):
            continue
        if waiting and comparable(payload[name]) == comparable(draft.get(name)):
            # iJoin put the whole new version in the draft (its line-up changed): approving it applies this.
            found.append(_awaiting_review(plan_id, name, shown(payload[name]), shown(held.get(name)), draft))
            continue
        found.append(Discrepancy(
            pair, PLAN_FIELD_DIFFERS, plan_key(plan_id), field=name,
            hcm_value=mask_field(name, shown(payload[name])),
            other_value=mask_field(name, shown(held.get(name))),
            repair_by=PLAN_SYNC_DAG_ID, what_to_do=REPAIR_BY_PLAN_SYNC,
        ))  # fmt: skip
    if "funds" not in payload:
        return found
    if lineup(payload) != lineup(held):
        if waiting:
            found.append(
                _awaiting_review(plan_id, "funds", _funds_in_words(payload), _funds_in_words(active), draft)
            )
        else:
            found.append(Discrepancy(
                pair, LINEUP_DIFFERS, plan_key(plan_id), field="funds",
                hcm_value=_funds_in_words(payload), other_value=_funds_in_words(held),
                repair_by=PLAN_SYNC_DAG_ID,
                what_to_do=REPAIR_BY_PLAN_SYNC + (DRAFT_NOTE if active else ""),
            ))  # fmt: skip
    elif _funds_by_id(payload["funds"]) != _funds_by_id(held.get("funds")):
        # Same funds, tickers and open flags; a name, asset class or default flag moved: updated in place.
        found.append(Discrepancy(
            pair, PLAN_FIELD_DIFFERS, plan_key(plan_id), field="funds",
            hcm_value=_funds_in_words(payload), other_value=_funds_in_words(held),
            repair_by=PLAN_SYNC_DAG_ID, what_to_do=REPAIR_BY_PLAN_SYNC,
        ))  # fmt: skip
    return found


def _awaiting_review(plan_id: str, field: str, ours: str, active: str, draft: dict[str, Any]) -> Discrepancy:
    return Discrepancy(
        RECORDKEEPER_IJOIN, DRAFT_AWAITING_REVIEW, plan_key(plan_id), field=field,
        hcm_value=mask_field(field, ours), other_value=mask_field(field, active),
        what_to_do=(f"iJoin holds the recordkeeper's value in draft {draft.get('version_id')} (the fund "
                    "line-up changed, so the whole version waits): a plan administrator approves it in "
                    "Required Actions ('iJoin Plan Draft Review'), which activates it."),
    )  # fmt: skip


def participant_discrepancies(
    plan_id: str,
    participant_id: str,
    expected: dict[str, Any] | None,
    held: dict[str, Any] | None,
    pending_elections: frozenset[str] | set[str] = frozenset(),
) -> list[Discrepancy]:
    """What differs between the participant the Participant Sync would send (``expected``: its payload
    record) and iJoin's record (``held``); either may be missing. ``pending_elections``: the kinds of
    election ("contribution_rate", "allocation") this participant made in iJoin that the recordkeeper
    does not have yet (a sync now would overwrite them in iJoin)."""
    pair, key = RECORDKEEPER_IJOIN, participant_key(plan_id, participant_id)
    if expected is None:
        return [Discrepancy(
            pair, PARTICIPANT_NOT_IN_RECORDKEEPER, key, other_value=str((held or {}).get("status") or ""),
            what_to_do=("iJoin has a participant the recordkeeper does not have in this plan: check the "
                        "participant id in the recordkeeper. No integration removes an iJoin participant."),
        )]  # fmt: skip
    if held is None:
        return [Discrepancy(pair, PARTICIPANT_MISSING_IN_IJOIN, key, repair_by=PARTICIPANT_SYNC_DAG_ID,
                            what_to_do=REPAIR_BY_PARTICIPANT_SYNC)]  # fmt: skip
    changed = participant_changes(expected, held)
    found: list[Discrepancy] = [
        Discrepancy(
            pair, PARTICIPANT_FIELD_DIFFERS, key, field=name,
            hcm_value=mask_field(name, shown(expected.get(name))),
            other_value=mask_field(name, shown(held.get(name))),
            repair_by=PARTICIPANT_SYNC_DAG_ID, what_to_do=REPAIR_BY_PARTICIPANT_SYNC,
        )
        for name in changed if name in PARTICIPANT_FIELDS
    ]  # fmt: skip
    if "contribution_rates" in changed:
        want_rates, have_rates = rates_of(expected), rates_of(held)
        found.append(_elected_or(
            "contribution_rate" in pending_elections, key, "contribution_rates", want_rates, have_rates,
            Discrepancy(pair, RATES_DIFFER, key, field="contribution_rates", hcm_value=shown(want_rates),
                        other_value=shown(have_rates), repair_by=PARTICIPANT_SYNC_DAG_ID,
                        what_to_do=REPAIR_BY_PARTICIPANT_SYNC),
        ))  # fmt: skip
    if "allocations" not in expected:
        # The sync never sends allocations that do not add up: iJoin keeps its own, and says so.
        found.append(Discrepancy(
            pair, ALLOCATIONS_NOT_SENDABLE, key, field="allocations",
            other_value=shown(held.get("allocations")),
            what_to_do=("; ".join(expected.get("sync_messages") or []) or
                        "The recordkeeper's allocations do not add up to 100%: correct them there."),
        ))  # fmt: skip
    elif "allocations" in changed:
        found.append(_elected_or(
            "allocation" in pending_elections, key, "allocations", expected.get("allocations"),
            held.get("allocations"),
            Discrepancy(pair, ALLOCATIONS_DIFFER, key, field="allocations",
                        hcm_value=shown(expected.get("allocations")),
                        other_value=shown(held.get("allocations")),
                        repair_by=PARTICIPANT_SYNC_DAG_ID, what_to_do=REPAIR_BY_PARTICIPANT_SYNC),
        ))  # fmt: skip
    return found


def _elected_or(
    elected: bool, key: str, field: str, want: Any, have: Any, otherwise: Discrepancy
) -> Discrepancy:
    """A difference the participant's own pending election explains is the Elections Writeback's to
    carry to the recordkeeper first: a Participant Sync now would overwrite the election in iJoin."""
    if not elected:
        return otherwise
    return Discrepancy(
        RECORDKEEPER_IJOIN, ELECTION_NOT_WRITTEN_BACK, key, field=field, hcm_value=shown(want),
        other_value=shown(have),
        what_to_do=("The participant made an election in iJoin that the recordkeeper does not have yet: "
                    "run the iJoin Enrollment Writeback, then the Participant Sync. Do not sync this plan "
                    "before: it would put the old value back in iJoin."),
    )  # fmt: skip
