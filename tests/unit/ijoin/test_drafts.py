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
    request = drafts.review_request(plan, "P1")
    assert request["subject"] == "Activate the new fund line-up of plan P1?"
    assert (
        "added: F3 ABCX" in request["body"]
        and "removed: F2" in request["body"]
        and "closed: F1" in request["body"]
    )
    with pytest.raises(drafts.DraftReviewError, match="no draft"):
        drafts.review_request({"active": {}, "draft": None}, "P1")


def test_reviews_requested_only_for_drafts() -> None:
    results = [
        {"details": {"plan_id": "P2", "result": "draft_created"}},
        {"details": {"plan_id": "P1", "result": "unchanged"}},
        None,
    ]
    assert drafts.reviews_to_request(results) == [{"plan_id": "P2"}]
    assert drafts.reviews_to_request(None) == []


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
