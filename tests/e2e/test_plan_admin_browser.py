"""A plan administrator's journeys, clicked in real Chromium on a whole Airflow (api-server, scheduler,
dag-processor, triggerer) from a fresh AIRFLOW_HOME, against the sandbox's recordkeeper and iJoin.

Every step a person takes is a click inside Airflow's UI (the hub's pages in its frame). The REST API
only sets up (turning the iJoin syncs' schedules on, as an administrator would once) and checks what
happened (a run's conf); iJoin's own API proves what it holds.

The last tests answer reviews through Airflow's HITL REST API (what Required Actions calls) for the
edges a person cannot time by hand: approving just after the draft changed, a refusal by iJoin, and
approvers named by the administrator. One Airflow for the whole module (the triggerer watches iJoin
while a review waits).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests

from benefits_hub.ui import urls
from tests.e2e.airflow_services import AirflowServices
from tests.e2e.browser import chromium_tab, open_from_navigation, sandboxed_airflow
from tests.e2e.conftest import running_api_server
from tests.e2e.receivers import wait_for
from tests.e2e.test_clerk_journeys_browser import RUN_MS, SHOTS
from tests.e2e.test_ijoin import PLANS, ijoin

pytestmark = pytest.mark.e2e
PLAN_SYNC, PARTICIPANT_SYNC = "ijoin_plan_sync", "ijoin_participant_sync"
PLAN = "P0001"  # a plain active plan of the sandbox


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowServices, Any]]:
    # A quick draft check for the reviews; the iJoin syncs in two mapped tasks (each log line still
    # names its plan), so the schedules' first runs for every plan cost half the task processes.
    env = {"AIRFLOW__BENEFITS_HUB__DRAFT_CHECK_SECONDS": "2", "AIRFLOW__BENEFITS_HUB__FAN_OUT_TASKS": "2"}
    with sandboxed_airflow(tmp_path_factory, "admin", env) as (services, box):
        for dag_id in (PLAN_SYNC, PARTICIPANT_SYNC):  # the administrator turned the schedules on once
            services.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        # ...and each schedule ran once for every plan, as it would on a live hub.
        for dag_id in (PLAN_SYNC, PARTICIPANT_SYNC):
            assert wait_for(lambda d=dag_id: finished_runs(services, d) >= 1, timeout=RUN_MS / 1000), (
                f"the scheduled {dag_id} did not run\n{services.logs()}"
            )
        yield services, box


@pytest.fixture(scope="module")
def page(hub: tuple[AirflowServices, Any]) -> Iterator[Any]:
    with chromium_tab(SHOTS) as tab:
        yield tab


def finished_runs(services: AirflowServices, dag_id: str) -> int:
    return sum(run["state"] in ("success", "failed") for run in services.runs(dag_id))


def sync_links(frame: Any, column: str) -> dict[str, str]:
    """Each plan's last-sync link (the run it points at), from the page."""
    rows = frame.locator("tr.plan")
    found = {}
    for index in range(rows.count()):
        row = rows.nth(index)
        link = row.locator(f".{column} a.sync-run")
        found[row.get_attribute("data-plan-id")] = link.get_attribute("href") if link.count() else ""
    return found


def open_plan_summary(page: Any, services: AirflowServices) -> Any:
    return open_from_navigation(page, services, "Plan Summary")


def test_1_sync_now_on_one_plan_shows_its_new_sync_and_its_participants(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    services, box = hub
    frame = open_plan_summary(page, services)
    plans = {p["plan_id"]: p for p in ijoin(box, "GET", "/api/v1/plans")["plans"]}
    rows = frame.locator("tr.plan")
    expect(rows).to_have_count(len(plans))
    row = frame.locator(f'tr.plan[data-plan-id="{PLAN}"]')
    expect(row).to_contain_text(plans[PLAN]["plan_name"])
    before = sync_links(frame, "last-plan-sync")
    assert before[PLAN]  # the schedule's run for every plan

    row.get_by_role("button", name="Sync plan now").click()
    # The page reloads itself while the sync runs; then the plan's own new time and status.
    expect(row.locator(".last-plan-sync a.sync-run")).not_to_have_attribute(
        "href", before[PLAN], timeout=RUN_MS
    )
    expect(row.locator(".last-plan-sync .badge")).to_have_text(re.compile("^Successful"))
    after = sync_links(frame, "last-plan-sync")
    assert {p: h for p, h in after.items() if p != PLAN} == {p: h for p, h in before.items() if p != PLAN}
    manual = [run for run in services.runs(PLAN_SYNC) if run["run_type"] == "manual"]
    assert [run["conf"]["plan_ids"] for run in manual] == [PLAN] and manual[0]["triggered_by"] == "ui"
    assert after[PLAN].endswith(manual[0]["dag_run_id"])

    # The plan's own page: Sync participants now, then each participant with iJoin's status and reason.
    row.locator("a.plan-link").click()
    expect(frame.locator("h1")).to_contain_text(f"Plan {PLAN}")
    participants_before = sync_links(frame, "last-participant-sync")[PLAN]
    frame.get_by_role("button", name="Sync participants now").click()
    expect(frame.locator("h1")).to_have_text("Plan Summary")
    expect(row.locator(".last-participant-sync a.sync-run")).not_to_have_attribute(
        "href", participants_before, timeout=RUN_MS
    )
    expect(row.locator(".last-participant-sync .badge")).to_have_text(re.compile("^Successful"))
    page.screenshot(path=str(SHOTS / "plan-summary.png"))
    row.locator("a.plan-link").click()
    held = ijoin(box, "GET", f"/api/v1/plans/{PLAN}/participants", params={"per_page": 100})
    expect(frame.locator("tr.participant")).to_have_count(held["total"])
    first = held["participants"][0]
    line = frame.locator(f'tr.participant[data-participant-id="{first["participant_id"]}"]')
    expect(line).to_contain_text(first["sync_status"])
    for message in first.get("sync_messages") or []:
        expect(line).to_contain_text(message)
    # Every participant synced with warnings has its reason on the page.
    warned = [p for p in held["participants"] if p["sync_status"] == "Synchronized with warnings"]
    assert warned and all(p["sync_messages"] for p in warned)
    for person in warned:
        reasons = frame.locator(f'tr.participant[data-participant-id="{person["participant_id"]}"] td').nth(3)
        expect(reasons).to_contain_text(person["sync_messages"][0])


def test_2_the_log_link_of_a_run_opens_airflows_task_page_inside_the_frame(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    services, _box = hub
    frame = open_plan_summary(page, services)
    frame.locator(f'tr.plan[data-plan-id="{PLAN}"] .last-plan-sync a.sync-run').click()
    expect(frame.locator("#run-name")).to_be_visible()
    task_page = re.compile(rf"/dags/{PLAN_SYNC}/runs/[^/]+/tasks/validate")
    with page.expect_event("framenavigated", predicate=lambda f: bool(task_page.search(f.url))) as landed:
        frame.locator("#task-logs a.log-link").first.click()
    # Airflow's own task page (its log) now fills the frame: the link worked where it was clicked.
    inner = landed.value
    assert inner.parent_frame is not None  # inside the frame, not a new tab or the top page
    expect(inner.locator("body")).to_contain_text("validate", timeout=30_000)


# -- the draft review ----------------------------------------------------------------------------------
REVIEW = "ijoin_plan_draft_review"


def close_fund(box: Any, plan_id: str, fund_id: str) -> None:
    """The recordkeeper closes a fund of the plan (its own table; the next Plan Sync sends it)."""
    with sqlite3.connect(box.recordkeeper_db_path) as db:
        db.execute("UPDATE rk_fund SET is_open = 0 WHERE plan_id = ? AND fund_id = ?", (plan_id, fund_id))


def pending_reviews(services: AirflowServices, plan_id: str) -> list[str]:
    """The plan's review runs still asking (checked over REST: what Required Actions lists)."""
    answer = services.api(
        "GET", f"/dags/{REVIEW}/dagRuns/~/hitlDetails", params={"response_received": "false"}
    )
    answer.raise_for_status()
    runs = [d["task_instance"]["dag_run_id"] for d in answer.json()["hitl_details"]]
    return sorted(r for r in runs if r.startswith(f"review__{plan_id}__"))


def review_of(row: Any) -> str:
    return unquote(row.locator("a.draft-waiting").get_attribute("href").rsplit("/", 1)[-1])


def sync_now(row: Any) -> None:
    """Click Sync plan now and wait for the plan's new last sync on the reloading page."""
    from playwright.sync_api import expect

    before = row.locator(".last-plan-sync a.sync-run").get_attribute("href")
    row.get_by_role("button", name="Sync plan now").click()
    expect(row.locator(".last-plan-sync a.sync-run")).not_to_have_attribute("href", before, timeout=RUN_MS)


def open_required_action(page: Any, services: AirflowServices, run_id: str) -> Any:
    """Airflow's home, Browse → Required Actions, the review's pending row: its page, with the table."""
    from playwright.sync_api import expect

    page.goto(services.base_url + "/")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Required Actions").click()
    row = page.get_by_role("row").filter(has_text=run_id).filter(has_text="Approval Required")
    row.get_by_role("link", name=re.compile(r"^Activate the new fund line-up of plan")).click()
    table = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Change"))
    expect(table).to_be_visible()
    return table


def shown_draft(table: Any) -> set[tuple[str, str | None, bool]]:
    """The draft line-up as the reviewer's page shows it: (fund, ticker, open) from the Draft column."""
    shown = set()
    rows = table.locator("tbody tr")
    for index in range(rows.count()):
        cells = rows.nth(index).locator("td").all_inner_texts()
        fund, draft = cells[0].strip(), cells[3].strip()
        if draft != "—":
            ticker, state = draft.rsplit(" ", 1)
            shown.add((fund, None if ticker == "(no ticker)" else ticker, state == "open"))
    return shown


def open_review_run(page: Any, services: AirflowServices, run_id: str) -> Any:
    """The Activity Monitor (navigation), then the review's run page."""
    from playwright.sync_api import expect

    frame = open_from_navigation(page, services, "Activity Monitor")
    frame.locator(f'#activity a[href$="/{quote(run_id, safe=":+")}"]').first.click()
    expect(frame.locator("#run-name")).to_be_visible()
    return frame


def test_3_one_review_per_draft_a_newer_draft_supersedes_it_and_approval_activates_what_was_shown(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    services, box = hub
    active = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")["active"]
    first, second = [f["fund_id"] for f in active["funds"]
                     if f["is_open"] and f["fund_id"] != active["default_investment"]][:2]  # fmt: skip

    # 1. The recordkeeper changes the line-up of an active plan; Sync plan now: one review appears.
    close_fund(box, PLAN, first)
    frame = open_plan_summary(page, services)
    row = frame.locator(f'tr.plan[data-plan-id="{PLAN}"]')
    sync_now(row)
    expect(row.locator("a.draft-waiting")).to_be_visible(timeout=60_000)
    old_review = review_of(row)
    assert wait_for(lambda: pending_reviews(services, PLAN) == [old_review], timeout=60)
    assert wait_for(lambda: waiting(services, old_review), timeout=60)  # see ``waiting``

    # 2. Sync again: still that one review.
    sync_now(row)
    expect(row.locator("a.draft-waiting")).to_be_visible()
    assert review_of(row) == old_review and pending_reviews(services, PLAN) == [old_review]

    # 3. The recordkeeper changes again: the old review is closed as superseded, one new review asks.
    close_fund(box, PLAN, second)
    sync_now(row)
    expect(row.locator("a.draft-waiting")).not_to_have_attribute("href", re.compile(re.escape(old_review)))
    new_review = review_of(row)
    assert wait_for(lambda: pending_reviews(services, PLAN) == [new_review], timeout=60)
    run_page = open_review_run(page, services, old_review)  # reloads itself until the run ends
    expect(run_page.locator("#run-name .badge")).to_have_text("Successful with warnings", timeout=RUN_MS)
    expect(run_page.locator("#summary")).to_contain_text("Superseded by a newer draft")

    # 4. The reviewer opens it in Required Actions, sees both closures side by side, and approves.
    assert wait_for(lambda: waiting(services, new_review), timeout=60)  # see ``waiting``
    table = open_required_action(page, services, new_review)
    for fund_id in (first, second):
        expect(table.locator("tbody tr").filter(has_text=fund_id)).to_contain_text("closed")
    shown = shown_draft(table)
    page.screenshot(path=str(SHOTS / "draft-review.png"))
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status").filter(has_text="review response successful")).to_be_visible()
    run_page = open_review_run(page, services, new_review)
    expect(run_page.locator("#run-name .badge")).to_have_text("Successful", timeout=RUN_MS)
    after = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")
    held = {(f["fund_id"], f["ticker"], bool(f["is_open"])) for f in after["active"]["funds"]}
    assert held == shown and after["draft"] is None  # exactly what the page showed


def test_4_a_refused_activation_says_ijoins_reason_in_the_activity_monitor(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    services, box = hub
    # Set-up: a draft iJoin's own validation refuses (an open fund without a ticker, made in iJoin),
    # and its review requested as a Plan Sync would.
    current = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")["active"]
    broken = {k: v for k, v in current.items() if k not in ("version_id", "created_at", "activated_at")}
    fund = next(f["fund_id"] for f in broken["funds"] if f["is_open"])
    broken["funds"] = [{**f, "ticker": None} if f["fund_id"] == fund else f for f in broken["funds"]]
    broken["funds"] = [*broken["funds"], {**broken["funds"][-1], "fund_id": "F099", "ticker": None}]
    ijoin(box, "PUT", f"/api/v1/plans/{PLAN}/sync", json=broken)
    version = ijoin(box, "GET", f"/api/v1/plans/{PLAN}")["draft"]["version_id"]
    review = f"review__{PLAN}__{version}"
    services.api(
        "POST", f"/dags/{REVIEW}/dagRuns",
        json={"dag_run_id": review, "logical_date": None, "conf": {"plan_id": PLAN, "version_id": version}},
    ).raise_for_status()  # fmt: skip
    assert wait_for(lambda: pending_reviews(services, PLAN) == [review], timeout=120)
    assert wait_for(lambda: waiting(services, review), timeout=60)  # see ``waiting``
    open_required_action(page, services, review)
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status").filter(has_text="review response successful")).to_be_visible()
    run_page = open_review_run(page, services, review)
    expect(run_page.locator("#run-name .badge")).to_have_text("Failed", timeout=RUN_MS)
    expect(run_page.locator(".reason")).to_contain_text(f"Fund {fund} has no ticker")
    assert ijoin(box, "GET", f"/api/v1/plans/{PLAN}")["active"] == current  # nothing activated


# -- pages are safe to open ------------------------------------------------------------------------
PAYLOAD = '"><img src=x onerror="window.top.__planted=1"><script>window.top.__planted=1</script>'


def hostile(value: Any) -> Any:
    """The same shape with a script-shaped string in every text and every key's value."""
    if isinstance(value, dict):
        return {key: hostile(item) for key, item in value.items()}
    if isinstance(value, list):
        return [hostile(item) for item in value] or [PAYLOAD]
    if isinstance(value, str) and not value.startswith("file://"):
        return PAYLOAD
    return value


def assert_nothing_ran(page: Any, frame: Any) -> None:
    from playwright.sync_api import expect

    expect(frame.locator("body")).to_contain_text('<img src=x onerror="window.top.__planted=1">')
    assert frame.locator('img[src="x"]').count() == 0  # shown as text, never as markup
    assert frame.locator("script:not([src])").count() == 0
    assert page.evaluate("window.__planted") is None


def test_5_script_planted_in_a_summary_an_error_file_and_ijoin_never_runs(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    services, box = hub
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # Set-up, as a user allowed to edit XComs through Airflow's API could: every field of a Plan
    # Sync's Run Summary made script-shaped, its error file too; and a plan's name in iJoin.
    run = next(r for r in services.runs(PLAN_SYNC) if r["run_type"] == "manual")
    path = f"/dags/{PLAN_SYNC}/dagRuns/{run['dag_run_id']}/taskInstances/summary/xcomEntries/return_value"
    summary = services.api("GET", path, params={"deserialize": True}).json()["value"]
    planted_errors = services.home / "staging" / PLAN_SYNC / "planted" / "error_file.csv"
    planted_errors.parent.mkdir(parents=True, exist_ok=True)
    cell = '"' + PAYLOAD.replace('"', '""') + '"'
    planted_errors.write_text("record_key,field,value,rule,reason,stage\n" + ",".join([cell] * 6) + "\n")
    planted = {**hostile(summary), "errors": 1, "error_files": [planted_errors.as_uri()]}
    services.api("PATCH", path, json={"value": planted}).raise_for_status()
    setup = next(p["plan_id"] for p in ijoin(box, "GET", "/api/v1/plans")["plans"] if p["status"] == "setup")
    version = ijoin(box, "GET", f"/api/v1/plans/{setup}")["draft"]
    body = {k: v for k, v in version.items() if k not in ("version_id", "created_at", "activated_at")}
    ijoin(box, "PUT", f"/api/v1/plans/{setup}/sync", json={**body, "plan_name": PAYLOAD})

    frame = open_plan_summary(page, services)  # iJoin's plan name
    assert_nothing_ran(page, frame)
    page.get_by_role("link", name="Activity Monitor").click()  # the list: the run's name, status...
    frame = page.frame_locator("iframe")
    expect(frame.locator("h1")).to_have_text("Activity Monitor")
    assert_nothing_ran(page, frame)
    frame.locator(f'#activity a[href$="/{quote(run["dag_run_id"], safe=":+")}"]').first.click()
    expect(frame.locator("#summary")).to_be_visible()  # every summary field, the outcomes table
    assert_nothing_ran(page, frame)
    page.goto(services.base_url + urls.error_records_path(PLAN_SYNC, run["dag_run_id"]))
    assert_nothing_ran(page, page)
    assert dialogs == []


def test_6_a_reconciliation_finds_a_plan_changed_in_ijoin_and_repair_syncs_that_plan(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    """Someone edits a plan in iJoin by hand: the plan admin's reconciliation finds it, and Repair on
    the discrepancy page runs the Plan Sync for that plan only (its own DAG, never paused)."""
    from playwright.sync_api import expect

    from tests.e2e.test_clerk_journeys_browser import (
        reconcile_from_the_monitor,
        wait_finished,
    )

    services, box = hub
    plan = PLANS["variable_pay"]  # active, in step, and not one the review tests above change
    synced_name = ijoin(box, "GET", f"/api/v1/plans/{plan}")["active"]["employer_name"]
    with sqlite3.connect(box.ijoin_state_path) as conn:
        (version_id,) = conn.execute(
            "SELECT active_version_id FROM ij_plan WHERE plan_id = ?", (plan,)
        ).fetchone()
        (body,) = conn.execute(
            "SELECT body FROM ij_plan_version WHERE version_id = ?", (version_id,)
        ).fetchone()
        edited = {**json.loads(body), "employer_name": "Edited in iJoin"}
        conn.execute(
            "UPDATE ij_plan_version SET body = ? WHERE version_id = ?", (json.dumps(edited), version_id)
        )

    frame = reconcile_from_the_monitor(
        page, services, "Admin reconciliation", pairs="recordkeeper_ijoin", plan_ids=plan
    )
    frame.locator("#discrepancies-link").click()
    row = frame.locator('#discrepancies tr[data-kind="plan_field_differs"]')
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Employer name")
    expect(row).to_contain_text(f"Recordkeeper: {synced_name}")
    expect(row).to_contain_text("iJoin: Edited in iJoin")
    row.locator('input[type="checkbox"]').check()
    frame.locator("#repair-selected").click()
    expect(frame.locator("#run-name")).to_contain_text("iJoin Plan Repair")
    wait_finished(frame, "Successful")
    assert ijoin(box, "GET", f"/api/v1/plans/{plan}")["active"]["employer_name"] == synced_name


# -- the same review through the HITL REST API (what Required Actions calls): its edges ----------------
# On the plan whose line-up the sandbox's recordkeeper changed (its first review was asked for by the
# schedule's run at set-up); the browser tests above work on PLAN.
REVIEW_PLAN = PLANS["lineup_changed"]
FINISHED = {"success", "failed"}


def ijoin_statuses(box: Any, plan_id: str) -> dict[str, str]:
    listed = ijoin(box, "GET", f"/api/v1/plans/{plan_id}/participants", params={"per_page": 100})
    return {p["participant_id"]: p["status"] for p in listed["participants"]}


def test_7_a_mass_termination_holds_the_participant_sync_and_the_plan_summary_links_the_approval(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    """A bad recordkeeper load terminates 30 % of a plan's active participants: Sync participants now
    holds before anything reaches iJoin, the Plan Summary says so and links the request, the plan
    administrator reads the counts in Required Actions and approves, and iJoin then has each one once."""
    from playwright.sync_api import expect

    services, box = hub
    plan = PLAN
    with sqlite3.connect(box.recordkeeper_db_path) as conn:
        active = [
            p
            for (p,) in conn.execute(
                "SELECT participant_id FROM rk_participant WHERE plan_id = ? AND status = 'A' ORDER BY 1",
                (plan,),
            )
        ]
        leavers = active[: max(len(active) * 3 // 10, 2)]
        conn.executemany(
            "UPDATE rk_participant SET status = 'T', termination_date = '2026-12-04' "
            "WHERE plan_id = ? AND participant_id = ?", [(plan, p) for p in leavers])  # fmt: skip
    before = ijoin_statuses(box, plan)

    frame = open_plan_summary(page, services)
    row = frame.locator(f'tr.plan[data-plan-id="{plan}"]')
    row.get_by_role("button", name="Sync participants now").click()
    held = frame.locator(f'tr.plan[data-plan-id="{plan}"] a.sync-held')
    expect(held).to_contain_text("Held for approval", timeout=RUN_MS)
    run_id = unquote(held.get_attribute("href").split("/runs/")[1].split("/")[0])
    after = ijoin_statuses(box, plan)
    assert after == before  # nothing reached iJoin while it waits
    assert wait_for(lambda: services.parked(PARTICIPANT_SYNC, "hold", run_id), timeout=60)

    held.click()  # Airflow's Required Actions page, in the frame
    approval = page.frame_locator("iframe")
    expect(approval.get_by_text("Delivery held: iJoin Participant Sync").first).to_be_visible(timeout=30_000)
    terminations = "Terminations (active in iJoin, terminated in the recordkeeper)"
    expect(approval.get_by_role("cell", name=terminations, exact=True)).to_be_visible()
    approval.get_by_role("button", name="Approve").click()
    expect(approval.get_by_role("status").filter(has_text="response successful")).to_be_visible()

    frame = open_plan_summary(page, services)
    row = frame.locator(f'tr.plan[data-plan-id="{plan}"]')
    # The page reloads until the sync ends: then it is the plan's last participant sync, held no more.
    expect(row.locator(".last-participant-sync a.sync-run")).to_have_attribute(
        "href", re.compile(re.escape(run_id) + "$"), timeout=RUN_MS
    )
    expect(row.locator("a.sync-held")).to_have_count(0)
    now = ijoin_statuses(box, plan)
    assert {p for p in leavers if now[p] == "T"} == set(leavers)


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
    return finished(services, PLAN_SYNC, run(services, PLAN_SYNC, {"plan_ids": REVIEW_PLAN}))


def pending(services: AirflowServices) -> list[str]:
    return pending_reviews(services, REVIEW_PLAN)


def waiting(services: AirflowServices, run_id: str) -> bool:
    """The review task is parked on the triggerer, and the scheduler knows its process has ended."""
    answer = services.api("GET", f"/dags/{REVIEW}/dagRuns/{run_id}/taskInstances/review")
    return (
        answer.status_code == 200
        and answer.json()["state"] == "deferred"
        and services.parked(REVIEW, "review", run_id)
    )


def wait_pending(services: AirflowServices, expected: list[str], timeout: float = 120) -> None:
    """Wait until exactly ``expected`` reviews ask, each parked on the triggerer (see ``waiting``)."""
    assert wait_for(
        lambda: pending(services) == expected and all(waiting(services, r) for r in expected),
        timeout=timeout,
        interval=1,
    ), f"pending reviews {pending(services)}, expected {expected}"


def hitl_url(run_id: str) -> str:
    return f"/dags/{REVIEW}/dagRuns/{run_id}/taskInstances/review/-1/hitlDetails"


def answer(services: AirflowServices, run_id: str, choice: str, reason: str = "") -> None:
    body: dict[str, Any] = {"chosen_options": [choice]}
    if reason:
        body["params_input"] = {"reason": reason}
    services.api("PATCH", hitl_url(run_id), json=body).raise_for_status()


def lineup(version: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(f["fund_id"], f["ticker"], bool(f["is_open"])) for f in version["funds"]}


def open_funds(version: dict[str, Any]) -> list[str]:
    return [
        f["fund_id"]
        for f in version["funds"]
        if f["is_open"] and f["fund_id"] != version["default_investment"]
    ]


def test_approving_a_review_whose_draft_changed_since_activates_nothing(
    hub: tuple[AirflowServices, Any],
) -> None:
    services, box = hub
    plan = ijoin(box, "GET", f"/api/v1/plans/{REVIEW_PLAN}")
    close_fund(box, REVIEW_PLAN, open_funds(plan["active"])[0])
    sync(services)
    shown = ijoin(box, "GET", f"/api/v1/plans/{REVIEW_PLAN}")
    review = f"review__{REVIEW_PLAN}__{shown['draft']['version_id']}"
    wait_pending(services, [review])

    # While the reviewer reads, someone replaces iJoin's draft (no new review is asked for), and the
    # reviewer approves at once: whether the hub's watch or iJoin's version pin catches it first,
    # nothing the reviewer did not see is activated.
    bookkeeping = {"version_id", "created_at", "activated_at"}
    newer = {k: v for k, v in shown["draft"].items() if k not in bookkeeping}
    newer["funds"] = [{**f, "is_open": False} if f["fund_id"] == open_funds(newer)[0] else f
                      for f in newer["funds"]]  # fmt: skip
    ijoin(box, "PUT", f"/api/v1/plans/{REVIEW_PLAN}/sync", json=newer)
    response = services.api("PATCH", hitl_url(review), json={"chosen_options": ["Approve"]})
    assert response.status_code in (200, 409), response.text  # 409: the hub's watch closed it first
    outcome = finished(services, REVIEW, review)

    assert outcome["outcome"] == "Superseded" and outcome["status"] == "Successful with warnings"
    after = ijoin(box, "GET", f"/api/v1/plans/{REVIEW_PLAN}")
    assert after["active"] == shown["active"]  # nothing activated
    assert after["draft"]["version_id"] != shown["draft"]["version_id"]


def test_a_rejection_keeps_the_draft_and_records_who_and_why_and_ijoins_refusal_is_reported(
    hub: tuple[AirflowServices, Any],
) -> None:
    services, box = hub
    sync(services)  # the recordkeeper's line-up again: a draft of its own, asked about once
    shown = ijoin(box, "GET", f"/api/v1/plans/{REVIEW_PLAN}")
    review = f"review__{REVIEW_PLAN}__{shown['draft']['version_id']}"
    wait_pending(services, [review])
    answer(services, review, "Reject", "wrong fund")
    rejected = finished(services, REVIEW, review)
    assert rejected["outcome"] == "Rejected" and rejected["decision_reason"] == "wrong fund"
    assert rejected["decided_by"] and "wrong fund" in rejected["warnings"][0]
    after = ijoin(box, "GET", f"/api/v1/plans/{REVIEW_PLAN}")
    assert after["active"] == shown["active"] and after["draft"] == shown["draft"]

    # A draft iJoin's own validation refuses (an open fund without a ticker, made in iJoin): the
    # reviewer approves, and iJoin's reason reaches the review's Run Summary.
    bookkeeping = {"version_id", "created_at", "activated_at"}
    broken = {k: v for k, v in shown["draft"].items() if k not in bookkeeping}
    fund = open_funds(broken)[0]
    broken["funds"] = [{**f, "ticker": None} if f["fund_id"] == fund else f for f in broken["funds"]]
    ijoin(box, "PUT", f"/api/v1/plans/{REVIEW_PLAN}/sync", json=broken)
    version = ijoin(box, "GET", f"/api/v1/plans/{REVIEW_PLAN}")["draft"]["version_id"]
    review = f"review__{REVIEW_PLAN}__{version}"  # as the Plan Sync names the review it requests
    conf = {"plan_id": REVIEW_PLAN, "version_id": version}
    body = {"dag_run_id": review, "logical_date": None, "conf": conf}
    services.api("POST", f"/dags/{REVIEW}/dagRuns", json=body).raise_for_status()
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
        plan = ijoin(box, "GET", f"/api/v1/plans/{REVIEW_PLAN}")
        close_fund(box, REVIEW_PLAN, open_funds(plan["active"])[-1])
        sync(services)
        draft = ijoin(box, "GET", f"/api/v1/plans/{REVIEW_PLAN}")["draft"]
        review = f"review__{REVIEW_PLAN}__{draft['version_id']}"
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
            assert ijoin(box, "GET", f"/api/v1/plans/{REVIEW_PLAN}")["active"] == plan["active"]

            assert answer_as("plan-admin").status_code == 200
        activated = finished(services, REVIEW, review)
        assert activated["outcome"] == "Activated" and activated["decided_by"] == "plan-admin"
        held = ijoin(box, "GET", f"/api/v1/plans/{REVIEW_PLAN}")["active"]
        assert held["version_id"] == draft["version_id"]
    finally:
        services.api("DELETE", "/variables/benefits_hub.draft_approvers")
