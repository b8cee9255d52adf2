"""The review's outcome rules: who closed it and why, in the reviewer's words."""

from __future__ import annotations

from benefits_hub.ijoin.review import draft_gone_reason, review_outcome


def test_a_review_stands_while_its_draft_is_the_one_shown() -> None:
    assert draft_gone_reason("P0004", "P0004-v2", "P0004-v2") is None


def test_a_newer_draft_or_none_closes_the_review_in_plain_words() -> None:
    newer = draft_gone_reason("P0004", "P0004-v2", "P0004-v3")
    assert newer is not None and newer.startswith("Superseded by a newer draft")
    assert "P0004-v2" in newer and "P0004-v3" in newer and "nothing was activated" in newer
    gone = draft_gone_reason("P0004", "P0004-v2", None)
    assert gone is not None and "no draft in iJoin any more" in gone


def test_outcomes() -> None:
    assert review_outcome({"result": "activated"}, None, "success") == "Activated"
    assert review_outcome(None, None, "skipped") == "Rejected"
    closed_by_the_hub = {"chosen_options": ["Reject"], "superseded": "Superseded by a newer draft: …"}
    assert review_outcome(None, None, "skipped", closed_by_the_hub) == "Superseded"
    assert review_outcome(None, {"superseded": True, "reason": "x"}, "failed") == "Superseded"
    assert review_outcome(None, {"superseded": False, "reason": "x"}, "failed") == "Refused by iJoin"
    assert review_outcome(None, None, "upstream_failed") == "Failed"
