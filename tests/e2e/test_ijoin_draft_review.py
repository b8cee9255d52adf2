"""A line-up draft waits for a person, on a whole Airflow (api-server, scheduler, dag-processor and the
triggerer that watches iJoin while a review waits): the Plan Sync requests one review run per draft
version and does not wait; the reviewer answers through the HITL REST API (what Required Actions
calls); approval activates exactly the version shown.

The recordkeeper is changed the way it changes in life (its own tables); iJoin is read through its API.
The browser journey of the same review is tests/e2e/test_plan_admin_browser.py.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.airflow_services import AirflowServices, airflow_services
from tests.e2e.conftest import running_api_server
from tests.e2e.receivers import wait_for
from tests.e2e.test_ijoin import PLANS, ijoin

pytestmark = pytest.mark.e2e
PLAN_SYNC, REVIEW = "ijoin_plan_sync", "ijoin_plan_draft_review"
PLAN = PLANS["lineup_changed"]
DAG_COUNT = 10
FINISHED = {"success", "failed"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowServices, Any]]:
    from hub_sandbox import Sandbox

    box = Sandbox.start(tmp_path_factory.mktemp("review-sandbox"), employees=200, seed=42, token_ttl=300)
    try:
        env = {**box.connection_env(), "AIRFLOW__BENEFITS_HUB__DRAFT_CHECK_SECONDS": "2"}
        with airflow_services(
            tmp_path_factory.mktemp("review-airflow"), env, dag_count=DAG_COUNT
        ) as services:
            services.api("PATCH", f"/dags/{PLAN_SYNC}", json={"is_paused": False}).raise_for_status()
            yield services, box
    finally:
        box.stop()


def run(services: AirflowServices, dag_id: str, conf: dict[str, Any]) -> str:
    answer = services.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
    answer.raise_for_status()
    return answer.json()["dag_run_id"]


def state(services: AirflowServices, dag_id: str, run_id: str) -> str:
    answer = services.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
    return answer.json().get("state", "") if answer.status_code == 200 else ""


def finished(services: AirflowServices, dag_id: str, run_id: str, timeout: float = 180) -> dict[str, Any]:
    """Wait for the run to end; its Run Summary."""
    assert wait_for(lambda: state(services, dag_id, run_id) in FINISHED, timeout=timeout, interval=1), (
        f"{dag_id} {run_id} did not finish\n{services.logs()}"
    )
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/summary/xcomEntries/return_value"
    answer = services.api("GET", path, params={"deserialize": True})
    answer.raise_for_status()
    return answer.json()["value"]


def sync(services: AirflowServices) -> dict[str, Any]:
    return finished(services, PLAN_SYNC, run(services, PLAN_SYNC, {"plan_ids": PLAN}))


def pending(services: AirflowServices) -> list[str]:
    """The review runs whose question nobody has answered (Required Actions' list)."""
    answer = services.api(
        "GET", f"/dags/{REVIEW}/dagRuns/~/hitlDetails", params={"response_received": "false"}
    )
    answer.raise_for_status()
    return sorted(d["task_instance"]["dag_run_id"] for d in answer.json()["hitl_details"])


def waiting(services: AirflowServices, run_id: str) -> bool:
    answer = services.api("GET", f"/dags/{REVIEW}/dagRuns/{run_id}/taskInstances/review")
    return answer.status_code == 200 and answer.json()["state"] == "deferred"


def wait_pending(services: AirflowServices, expected: list[str], timeout: float = 120) -> None:
    """Wait until exactly ``expected`` reviews ask, each parked on the triggerer. Then a moment more,
    as a person reading would take: an answer within a second of the task deferring races the
    executor's report of the deferring process (Airflow then fails the task; see the closing note)."""
    assert wait_for(
        lambda: pending(services) == expected and all(waiting(services, r) for r in expected),
        timeout=timeout,
        interval=1,
    ), f"pending reviews {pending(services)}, expected {expected}"
    time.sleep(3)


def hitl_url(run_id: str) -> str:
    return f"/dags/{REVIEW}/dagRuns/{run_id}/taskInstances/review/-1/hitlDetails"


def answer(services: AirflowServices, run_id: str, choice: str, reason: str = "") -> None:
    body: dict[str, Any] = {"chosen_options": [choice]}
    if reason:
        body["params_input"] = {"reason": reason}
    services.api("PATCH", hitl_url(run_id), json=body).raise_for_status()


def close_fund(box: Any, fund_id: str) -> None:
    """The recordkeeper closes a fund of the plan (its own table; the next Plan Sync sends it)."""
    with sqlite3.connect(box.recordkeeper_db_path) as db:
        db.execute("UPDATE rk_fund SET is_open = 0 WHERE plan_id = ? AND fund_id = ?", (PLAN, fund_id))


def lineup(version: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(f["fund_id"], f["ticker"], bool(f["is_open"])) for f in version["funds"]}


def open_funds(version: dict[str, Any]) -> list[str]:
    return [
        f["fund_id"]
        for f in version["funds"]
        if f["is_open"] and f["fund_id"] != version["default_investment"]
    ]


def test_one_review_per_draft_a_newer_draft_supersedes_it_and_approval_activates_what_was_shown(
    hub: tuple[AirflowServices, Any],
) -> None:
    services, box = hub
    first = sync(services)
    assert first["status"] == "Successful with warnings"
    assert "Required Actions" in " ".join(first["warnings"])  # where to approve: in Airflow
    v1 = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")["draft"]["version_id"]
    r1 = f"review__{PLAN}__{v1}"
    wait_pending(services, [r1])
    detail = services.api("GET", hitl_url(r1)).json()
    assert PLAN in detail["subject"] and "| Fund | Name | Current | Draft | Change |" in detail["body"]

    # A re-run of the sync while the review waits asks nobody twice.
    sync(services)
    time.sleep(3)
    assert pending(services) == [r1]

    # The recordkeeper changes again: the next sync replaces iJoin's draft; the waiting review closes
    # itself as superseded and one new review asks about the newer draft.
    shown_before = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")
    closed = open_funds(shown_before["draft"])[0]
    close_fund(box, closed)
    sync(services)
    current = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")
    v2 = current["draft"]["version_id"]
    assert v2 != v1
    r2 = f"review__{PLAN}__{v2}"
    superseded = finished(services, REVIEW, r1)
    assert superseded["outcome"] == "Superseded" and superseded["status"] == "Successful with warnings"
    assert "Superseded by a newer draft" in superseded["warnings"][0] and superseded["decided_by"] is None
    wait_pending(services, [r2])
    body = services.api("GET", hitl_url(r2)).json()["body"]
    assert f"| {closed} |" in body and "**closed**" in body  # the new change, side by side

    answer(services, r2, "Approve")
    activated = finished(services, REVIEW, r2)
    assert activated["outcome"] == "Activated" and activated["status"] == "Successful"
    assert activated["decided_by"] and activated["plan_sync_run"]
    after = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")
    assert after["draft"] is None and after["active"]["version_id"] == v2
    assert lineup(after["active"]) == lineup(current["draft"])  # exactly the version shown


def test_approving_a_review_whose_draft_changed_since_activates_nothing(
    hub: tuple[AirflowServices, Any],
) -> None:
    services, box = hub
    plan = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")
    close_fund(box, open_funds(plan["active"])[0])
    sync(services)
    shown = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")
    review = f"review__{PLAN}__{shown['draft']['version_id']}"
    wait_pending(services, [review])

    # While the reviewer reads, someone replaces iJoin's draft (no new review is asked for), and the
    # reviewer approves at once: whether the hub's watch or iJoin's version pin catches it first,
    # nothing the reviewer did not see is activated.
    bookkeeping = {"version_id", "created_at", "activated_at"}
    newer = {k: v for k, v in shown["draft"].items() if k not in bookkeeping}
    newer["funds"] = [{**f, "is_open": False} if f["fund_id"] == open_funds(newer)[0] else f
                      for f in newer["funds"]]  # fmt: skip
    ijoin(box, "PUT", f"/api/v1/plans/{PLAN}/sync", json=newer)
    response = services.api("PATCH", hitl_url(review), json={"chosen_options": ["Approve"]})
    assert response.status_code in (200, 409), response.text  # 409: the hub's watch closed it first
    outcome = finished(services, REVIEW, review)

    assert outcome["outcome"] == "Superseded" and outcome["status"] == "Successful with warnings"
    after = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")
    assert after["active"] == shown["active"]  # nothing activated
    assert after["draft"]["version_id"] != shown["draft"]["version_id"]


def test_a_rejection_keeps_the_draft_and_records_who_and_why_and_ijoins_refusal_is_reported(
    hub: tuple[AirflowServices, Any],
) -> None:
    services, box = hub
    sync(services)  # the recordkeeper's line-up again: a draft of its own, asked about once
    shown = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")
    review = f"review__{PLAN}__{shown['draft']['version_id']}"
    wait_pending(services, [review])
    answer(services, review, "Reject", "wrong fund")
    rejected = finished(services, REVIEW, review)
    assert rejected["outcome"] == "Rejected" and rejected["decision_reason"] == "wrong fund"
    assert rejected["decided_by"] and "wrong fund" in rejected["warnings"][0]
    after = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")
    assert after["active"] == shown["active"] and after["draft"] == shown["draft"]

    # A draft iJoin's own validation refuses (an open fund without a ticker, made in iJoin): the
    # reviewer approves, and iJoin's reason reaches the review's Run Summary.
    bookkeeping = {"version_id", "created_at", "activated_at"}
    broken = {k: v for k, v in shown["draft"].items() if k not in bookkeeping}
    fund = open_funds(broken)[0]
    broken["funds"] = [{**f, "ticker": None} if f["fund_id"] == fund else f for f in broken["funds"]]
    ijoin(box, "PUT", f"/api/v1/plans/{PLAN}/sync", json=broken)
    version = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")["draft"]["version_id"]
    review = run(services, REVIEW, {"plan_id": PLAN, "version_id": version})
    wait_pending(services, [review])
    answer(services, review, "Approve")
    refused = finished(services, REVIEW, review)
    assert refused["outcome"] == "Refused by iJoin" and refused["status"] == "Failed"
    assert f"Fund {fund} has no ticker" in refused["failure_reason"]


def test_only_a_named_approver_may_answer_a_review(hub: tuple[AirflowServices, Any], tmp_path: Path) -> None:
    services, box = hub
    # The administrator names the approvers (Admin → Variables).
    services.api(
        "POST",
        "/variables",
        json={"key": "benefits_hub.draft_approvers", "value": "plan-admin, benefits-lead"},
    ).raise_for_status()
    try:
        plan = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")
        close_fund(box, open_funds(plan["active"])[-1])
        sync(services)
        draft = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")["draft"]
        review = f"review__{PLAN}__{draft['version_id']}"
        wait_pending(services, [review])
        detail = services.api("GET", hitl_url(review)).json()
        assert [u["id"] for u in detail["assigned_users"]] == ["plan-admin", "benefits-lead"]

        # Two people with logins (an api-server on the same metadata DB that asks for one): an admin
        # who is not a named approver is refused; a named approver's answer counts.
        passwords = tmp_path / "passwords.json"
        passwords.write_text(json.dumps({"hr-admin": "hr-admin-pw", "plan-admin": "plan-admin-pw"}))
        logins = {
            **services.env,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "hr-admin:admin,plan-admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        }
        with running_api_server(logins, log_name="approvers-api-server.log") as base:

            def answer_as(user: str) -> requests.Response:
                token = requests.post(
                    f"{base}/auth/token", json={"username": user, "password": f"{user}-pw"}, timeout=30
                ).json()["access_token"]
                return requests.patch(
                    f"{base}/api/v2{hitl_url(review)}", json={"chosen_options": ["Approve"]},
                    headers={"Authorization": f"Bearer {token}"}, timeout=30,
                )  # fmt: skip

            refused = answer_as("hr-admin")
            assert refused.status_code == 403 and "not a respondent" in refused.text
            assert pending(services) == [review]  # still waiting for a named approver
            assert ijoin(box, "GET", f"/api/v1/plans/{PLAN}")["active"] == plan["active"]

            assert answer_as("plan-admin").status_code == 200
        activated = finished(services, REVIEW, review)
        assert activated["outcome"] == "Activated" and activated["decided_by"] == "plan-admin"
        assert ijoin(box, "GET", f"/api/v1/plans/{PLAN}")["active"]["version_id"] == draft["version_id"]
    finally:
        services.api("DELETE", "/variables/benefits_hub.draft_approvers")
