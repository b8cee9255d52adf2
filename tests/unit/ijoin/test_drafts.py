"""Draft review helpers against the real sandbox iJoin (activation's own validation)."""

from __future__ import annotations

from typing import Any

import pytest

from benefits_hub.hooks.ijoin import IJoinHook
from benefits_hub.ijoin import drafts


def test_review_request_describes_the_lineup_change() -> None:
    plan = {
        "active": {"funds": [{"fund_id": "F1", "is_open": True}, {"fund_id": "F2", "is_open": True}]},
        "draft": {
            "plan_name": "Acme 401(k)",
            "funds": [
                {"fund_id": "F1", "is_open": False, "fund_name": "Bond"},
                {"fund_id": "F3", "ticker": "ABCX"},
            ],
        },
    }
    plan["draft"]["version_id"] = "P1-v2"
    request = drafts.review_request(plan, "P1")
    assert request["subject"] == "Activate the new fund line-up of plan P1 (Acme 401(k))?"
    assert request["version_id"] == "P1-v2" and "draft **P1-v2**" in request["body"]
    # Current and draft side by side, each change marked.
    rows = {r["fund_id"]: r for r in drafts.lineup_rows(plan["active"], plan["draft"])}
    assert (
        rows["F3"]["change"] == "added"
        and rows["F3"]["current"] == "—"
        and "ABCX open" in rows["F3"]["draft"]
    )
    assert rows["F2"]["change"] == "removed" and rows["F2"]["draft"] == "—"
    assert rows["F1"]["change"] == "closed" and rows["F1"]["current"].endswith("open")
    assert "| F3 |  | — | ABCX open | **added** |" in request["body"]
    assert "Also changed: Plan name." in request["body"]
    assert "| Plan name | (none) | Acme 401(k) |" in request["body"]  # the values, side by side
    contacts = {"employer_sponsor": {"name": "Sam", "email": "s@x"}}
    assert drafts.spec_value(contacts) == "employer sponsor: Sam s@x"
    assert (
        drafts.spec_value([{"match_pct": "100.00", "contribution_pct": "3.00"}]) == "100.00% match on 3.00%"
    )
    with pytest.raises(drafts.DraftReviewError, match="no draft"):
        drafts.review_request({"active": {}, "draft": None}, "P1")


def test_reviews_requested_only_for_drafts() -> None:
    results = [
        {"details": {"plan_id": "P2", "result": "draft_created"}},
        {"details": {"plan_id": "P1", "result": "unchanged"}},
        None,
    ]
    results[0]["details"]["draft_version_id"] = "P2-v3"
    assert drafts.reviews_to_request(results) == [
        {
            "conf": {
                "plan_id": "P2",
                "version_id": "P2-v3",
                "plan_sync_run_id": None,
                "plan_sync_dag_id": "ijoin_plan_sync",
            },
            "trigger_run_id": "review__P2__P2-v3",
        }
    ]
    assert drafts.reviews_to_request(results, "manual__9")[0]["conf"]["plan_sync_run_id"] == "manual__9"
    # A draft left by a reconciliation's Plan Repair links that run, on its own DAG.
    by_repair = drafts.reviews_to_request(results, "manual__7", "ijoin_plan_repair")[0]["conf"]
    assert by_repair["plan_sync_dag_id"] == "ijoin_plan_repair"
    assert drafts.reviews_to_request(None) == []
    blocked = [{"details": {**results[0]["details"], "never_activatable": True}}]
    assert drafts.reviews_to_request(blocked) == []  # nobody asked to approve what iJoin would refuse


def test_activation_refusal_gives_ijoins_reasons(sandbox: Any) -> None:
    hook = IJoinHook()
    plan = hook.get_plan("P0001")
    bookkeeping = {"version_id", "created_at", "activated_at"}
    broken = {k: v for k, v in plan["active"].items() if k not in bookkeeping}
    no_ticker = {"fund_id": "F099", "ticker": None, "fund_name": "No Ticker", "asset_class": "Bond"}
    broken.update(
        employer_ein=None, funds=[*broken["funds"], {**no_ticker, "is_default": False, "is_open": True}]
    )
    assert hook.sync_plan("P0001", broken)["result"] == "draft_created"
    with pytest.raises(drafts.DraftReviewError) as refused:
        drafts.activate(hook, "P0001")
    assert "EIN" in str(refused.value) and "F099" in str(refused.value)


def test_activating_a_version_other_than_the_draft_activates_nothing(sandbox: Any) -> None:
    hook = IJoinHook()
    plan = hook.get_plan("P0001")
    bookkeeping = {"version_id", "created_at", "activated_at"}
    changed = {k: v for k, v in plan["active"].items() if k not in bookkeeping}
    changed["funds"] = [{**f, "is_open": False} if not f["is_default"] else f for f in changed["funds"]][:]
    assert hook.sync_plan("P0001", changed)["result"] == "draft_created"
    shown = hook.get_plan("P0001")["draft"]["version_id"]
    newer = {
        **changed,
        "funds": [{**f, "ticker": "NEWX"} if not f["is_default"] else f for f in changed["funds"]],
    }
    assert hook.sync_plan("P0001", newer)["result"] == "draft_created"
    with pytest.raises(drafts.DraftSuperseded, match="Superseded by a newer draft"):
        drafts.activate(hook, "P0001", shown)
    after = hook.get_plan("P0001")
    assert after["active"] == plan["active"] and after["draft"]["version_id"] != shown
    # The version on screen now is activated exactly.
    drafts.activate(hook, "P0001", after["draft"]["version_id"])
    assert hook.get_plan("P0001")["active"]["version_id"] == after["draft"]["version_id"]
