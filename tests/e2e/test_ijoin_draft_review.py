"""A line-up draft waits for a person: the Plan Sync requests a review run and does not wait; the
review run waits in Airflow's Required Actions until a person approves it through the api-server
(here: its HITL REST API), then iJoin activates the draft. Real api-server, real dag.test."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from tests.e2e.conftest import run_dag
from tests.e2e.test_ijoin import PLANS, ijoin

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
REVIEW = "ijoin_plan_draft_review"


def answer_when_asked(
    base: str, choice: str, answered: dict[str, Any], timeout: float = 90, before_answer: Any = None
) -> None:
    """A reviewer: waits until the review task asks, then answers through the HITL REST API
    (``before_answer`` runs in between: the world changing while the reviewer reads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = requests.get(
            f"{base}/api/v2/dags/{REVIEW}/dagRuns/~/taskInstances",
            params={"state": "awaiting_input"},
            timeout=10,
        ).json()
        waiting = [ti for ti in listing.get("task_instances", []) if ti["task_id"] == "review"]
        if waiting:
            ti = waiting[0]
            url = (
                f"{base}/api/v2/dags/{REVIEW}/dagRuns/{ti['dag_run_id']}/taskInstances/review/-1/hitlDetails"
            )
            answered["detail"] = requests.get(url, timeout=10).json()
            if before_answer is not None:
                before_answer()
            answer = {"chosen_options": [choice]}
            if choice == "Reject":
                answer["params_input"] = {"reason": "wrong fund"}
            answered["response"] = requests.patch(url, json=answer, timeout=10).status_code
            return
        time.sleep(0.5)


def review(
    base: str, plan_id: str, choice: str, version_id: str | None = None, before_answer: Any = None
) -> tuple[Any, dict[str, Any]]:
    answered: dict[str, Any] = {}
    reviewer = threading.Thread(
        target=answer_when_asked, args=(base, choice, answered, 90, before_answer), daemon=True
    )
    reviewer.start()
    outcome = run_dag(REVIEW, {"plan_id": plan_id, "version_id": version_id, "plan_sync_run_id": "manual__1"})
    reviewer.join(timeout=5)
    return outcome, answered


def review_runs() -> dict[str, dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return {r.run_id: dict(r.conf or {}) for r in session.query(DagRun).filter_by(dag_id=REVIEW)}


def forget_reviews() -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        for run in session.query(DagRun).filter_by(dag_id=REVIEW):
            session.delete(run)


def lineup(version: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(f["fund_id"], f["ticker"], bool(f["is_open"])) for f in version["funds"]}


def test_plan_sync_requests_one_review_per_draft_version_and_approval_activates_it(
    sandbox: Any, api_server: str
) -> None:
    plan_id = PLANS["lineup_changed"]
    # Each test's iJoin starts again at version 1, unlike a real one: earlier tests' reviews would carry
    # the same run ids (review__<plan>__<version>) and count as already requested.
    forget_reviews()
    before_sync = review_runs()
    sync = run_dag("ijoin_plan_sync", {"plan_ids": plan_id})
    assert sync.summary["status"] == "Successful with warnings"
    assert "Required Actions" in sync.summary["warnings"][0]  # where to approve: in Airflow
    assert sync.task_states["summary"] == "success"  # the sync ended with its own status, not waiting
    before = ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}")
    version = before["draft"]["version_id"]
    # A re-run of the sync while the review waits asks nobody twice.
    run_dag("ijoin_plan_sync", {"plan_ids": plan_id})
    requested = {run_id: conf for run_id, conf in review_runs().items() if run_id not in before_sync}
    assert list(requested) == [f"review__{plan_id}__{version}"]
    conf = requested[f"review__{plan_id}__{version}"]
    assert conf == {"plan_id": plan_id, "version_id": version, "plan_sync_run_id": sync.run_id}

    outcome, answered = review(api_server, plan_id, "Approve", version)

    assert answered.get("response") == 200, answered
    body = answered["detail"]["body"]
    assert plan_id in answered["detail"]["subject"] and "| Fund | Name | Current | Draft | Change |" in body
    assert version in body
    assert outcome.task_states["activate"] == "success"
    assert outcome.summary["outcome"] == "Activated" and outcome.summary["status"] == "Successful"
    assert outcome.summary["version_id"] == version and outcome.summary["plan_sync_run"]
    assert outcome.summary["decided_by"]  # who approved is on record
    after = ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}")
    assert after["draft"] is None and after["active"]["version_id"] == version
    assert lineup(after["active"]) == lineup(before["draft"])  # exactly what the review showed


def test_approving_a_review_whose_draft_changed_activates_nothing(sandbox: Any, api_server: str) -> None:
    plan_id = PLANS["lineup_changed"]
    run_dag("ijoin_plan_sync", {"plan_ids": plan_id})
    shown = ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}")

    def next_sync_replaces_the_draft() -> None:
        # While the reviewer reads, the recordkeeper closes another fund and a Plan Sync sends it.
        bookkeeping = {"version_id", "created_at", "activated_at"}
        newer = {k: v for k, v in shown["draft"].items() if k not in bookkeeping}
        newer["funds"] = [{**f, "is_open": False} if f["fund_id"] == newer["funds"][-1]["fund_id"] else f
                          for f in newer["funds"]]  # fmt: skip
        ijoin(sandbox, "PUT", f"/api/v1/plans/{plan_id}/sync", json=newer)

    outcome, answered = review(
        api_server,
        plan_id,
        "Approve",
        shown["draft"]["version_id"],
        before_answer=next_sync_replaces_the_draft,
    )

    assert answered.get("response") == 200, answered
    assert outcome.summary["outcome"] == "Superseded"
    assert outcome.summary["status"] == "Successful with warnings"
    assert "Superseded by a newer draft" in outcome.summary["warnings"][0]
    after = ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}")
    assert after["active"] == shown["active"]  # nothing activated
    assert after["draft"]["version_id"] != shown["draft"]["version_id"]
    # A review asked for an older version than iJoin's draft refuses before asking anyone.
    stale = run_dag(REVIEW, {"plan_id": plan_id, "version_id": shown["draft"]["version_id"]})
    assert (
        stale.task_states["review"] != "success"
        and ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}") == after
    )


def test_rejected_draft_stays_inactive(sandbox: Any, api_server: str) -> None:
    plan_id = PLANS["lineup_changed"]
    run_dag("ijoin_plan_sync", {"plan_ids": plan_id})
    before = ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}")

    outcome, answered = review(api_server, plan_id, "Reject")

    assert answered.get("response") == 200, answered
    assert outcome.task_states["activate"] == "skipped"
    assert outcome.summary["outcome"] == "Rejected"
    assert (
        "wrong fund" in outcome.summary["warnings"][0] and outcome.summary["decision_reason"] == "wrong fund"
    )
    after = ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}")
    assert after["active"] == before["active"] and after["draft"] is not None
