"""The Plan Summary's rules and pages, without Airflow."""

from __future__ import annotations

from datetime import UTC, datetime

from benefits_hub.ui.activity import RunFacts
from benefits_hub.ui.plans import (
    held_per_plan,
    latest_per_plan,
    participant_rows,
    plan_rows,
    running_per_plan,
)
from benefits_hub.ui.render_plans import plan_page, plans_page

SYNC = "ijoin_plan_sync"


def run(run_id: str, hour: int, outcomes: list[dict], state: str = "success") -> RunFacts:
    return RunFacts(
        dag_id=SYNC,
        run_id=run_id,
        state=state,
        end_date=datetime(2026, 12, 6, hour, tzinfo=UTC) if state == "success" else None,
        summary={"status": "Completed", "outcomes": outcomes},
    )


def test_each_plans_last_sync_is_the_newest_run_that_synced_it_with_its_own_status() -> None:
    runs = [
        run("all", 8, [{"plan_id": "P1", "status": "Successful"}, {"plan_id": "P2", "status": "Successful"}]),
        run("p2-only", 9, [{"plan_id": "P2", "status": "Failed", "messages": ["Employer EIN is missing"]}]),
        run("running", 10, [], state="running"),
    ]
    latest = latest_per_plan(runs)
    assert latest["P1"].run_id == "all" and latest["P1"].status == "Successful"
    assert latest["P2"].run_id == "p2-only" and latest["P2"].status == "Failed"
    assert latest["P2"].reason == "Employer EIN is missing"


def test_a_dry_run_is_never_a_plans_last_sync() -> None:
    dry = run("dry", 11, [{"plan_id": "P1", "status": "Successful"}])
    dry.summary["dry_run"] = True
    latest = latest_per_plan([run("real", 8, [{"plan_id": "P1", "status": "Failed"}]), dry])
    assert latest["P1"].run_id == "real"


def test_rows_follow_ijoins_plans_with_drafts_reviews_and_syncs_in_progress() -> None:
    ijoin = [
        {"plan_id": "P2", "plan_name": "Beta 401(k)", "status": "active", "has_draft": True},
        {"plan_id": "P1", "plan_name": "Alpha 401(k)", "status": "setup", "has_draft": False},
    ]
    running = [run("now", 10, [], state="running"), run("all", 10, [], state="queued")]
    busy = running_per_plan(running, {(SYNC, "now"): {"plan_ids": "P2"}, (SYNC, "all"): {}})
    rows = plan_rows(ijoin, {}, {}, {"P2": "review__P2__P2-v2"}, busy)
    assert [r.plan_id for r in rows] == ["P1", "P2"]
    assert rows[1].review_run_id == "review__P2__P2-v2" and rows[1].has_draft
    assert rows[0].in_progress == (SYNC,)  # the run for every plan
    assert rows[1].in_progress == (SYNC,)


def test_a_sync_held_for_approval_links_its_request_instead_of_saying_in_progress() -> None:
    from dataclasses import replace

    held = replace(run("held", 10, [], state="running"), awaiting=("hold", -1))
    conf = {(SYNC, "held"): {"plan_ids": "P2"}}
    rows = plan_rows(
        [{"plan_id": "P1"}, {"plan_id": "P2"}], {}, {}, {},
        running_per_plan([held], conf), held_per_plan([held], conf),
    )  # fmt: skip
    assert rows[0].held_path is None
    assert rows[1].held_path == f"/dags/{SYNC}/runs/held/tasks/hold/required_actions"
    html = plans_page(rows, root="/airflow", may_sync=True)
    assert 'href="/airflow/dags/ijoin_plan_sync/runs/held/tasks/hold/required_actions"' in html
    assert "Held for approval" in html and html.count("Sync in progress") == 0
    assert held_per_plan([replace(held, state="failed")], conf) == {}  # answered and over


def test_participants_with_ijoins_status_and_those_the_sync_could_not_deliver() -> None:
    ijoin = [
        {"participant_id": "R2", "first_name": "Ann", "last_name": "Lee", "sync_status": "Synchronized"},
        {"participant_id": "R1", "first_name": "Bo", "last_name": "Chan",
         "sync_status": "Synchronized with warnings", "sync_messages": ["Pay frequency unknown"]},
    ]  # fmt: skip
    refused = [
        {"record_key": "P1/R9", "reason": "iJoin refused the participant: birth_date is not a date."},
        {"record_key": "P1/R1", "reason": "Allocations add up to 90%."},
    ]
    rows = participant_rows(ijoin, refused)
    assert [r.participant_id for r in rows] == ["R1", "R2", "R9"]
    assert rows[0].reasons == ("Pay frequency unknown", "Allocations add up to 90%.")
    assert rows[2].status == "Not synchronized" and "birth_date" in rows[2].reasons[0]


def test_pages_escape_every_value_and_offer_sync_now_only_to_who_may() -> None:
    hostile = '<script>alert("x")</script>'
    rows = plan_rows([{"plan_id": "P1", "plan_name": hostile, "status": hostile}], {}, {}, {})
    html = plans_page(rows, root="", may_sync=True)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert html.count('class="secondary sync-now"') == 2
    assert "sync-now" not in plans_page(rows, root="", may_sync=False).split("</thead>")[1]
    person = {"participant_id": hostile, "first_name": hostile, "sync_messages": [hostile]}
    people = participant_rows([person])
    page = plan_page(rows[0], people, root="", may_sync=True)
    assert "<script>alert" not in page
