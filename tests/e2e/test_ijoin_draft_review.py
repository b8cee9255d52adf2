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


def answer_when_asked(base: str, choice: str, answered: dict[str, Any], timeout: float = 90) -> None:
    """A reviewer: waits until the review task asks, then answers through the HITL REST API."""
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
            answered["response"] = requests.patch(
                url, json={"chosen_options": [choice]}, timeout=10
            ).status_code
            return
        time.sleep(0.5)


def review(base: str, plan_id: str, choice: str) -> tuple[Any, dict[str, Any]]:
    answered: dict[str, Any] = {}
    reviewer = threading.Thread(target=answer_when_asked, args=(base, choice, answered), daemon=True)
    reviewer.start()
    outcome = run_dag(REVIEW, {"plan_id": plan_id})
    reviewer.join(timeout=5)
    return outcome, answered


def test_plan_sync_requests_a_review_and_approval_activates_the_draft(sandbox: Any, api_server: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    def review_runs() -> dict[str, dict[str, Any]]:
        with create_session() as session:
            return {r.run_id: dict(r.conf or {}) for r in session.query(DagRun).filter_by(dag_id=REVIEW)}

    plan_id = PLANS["lineup_changed"]
    before_sync = review_runs()
    sync = run_dag("ijoin_plan_sync", {"plan_ids": plan_id})
    assert sync.summary["status"] == "Successful with warnings"
    assert sync.task_states["summary"] == "success"  # the sync ended with its own status, not waiting
    requested = [conf for run_id, conf in review_runs().items() if run_id not in before_sync]
    assert requested == [{"plan_id": plan_id}]
    before = ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}")
    assert before["draft"] is not None

    outcome, answered = review(api_server, plan_id, "Approve")

    assert answered.get("response") == 200, answered
    assert "fund line-up" in answered["detail"]["subject"] or "line-up" in answered["detail"]["body"]
    assert outcome.task_states["activate"] == "success"
    assert outcome.summary["status"] == "Activated"
    after = ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}")
    assert after["draft"] is None
    assert {f["fund_id"] for f in after["active"]["funds"]} == {
        f["fund_id"] for f in before["draft"]["funds"]
    }


def test_rejected_draft_stays_inactive(sandbox: Any, api_server: str) -> None:
    plan_id = PLANS["lineup_changed"]
    run_dag("ijoin_plan_sync", {"plan_ids": plan_id})
    before = ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}")

    outcome, answered = review(api_server, plan_id, "Reject")

    assert answered.get("response") == 200, answered
    assert outcome.task_states["activate"] == "skipped"
    assert outcome.summary["status"] == "Rejected"
    after = ijoin(sandbox, "GET", f"/api/v1/plans/{plan_id}")
    assert after["active"] == before["active"] and after["draft"] is not None
