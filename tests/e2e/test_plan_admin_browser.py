"""A plan administrator's journeys, clicked in real Chromium on a whole Airflow (api-server, scheduler,
dag-processor, triggerer) from a fresh AIRFLOW_HOME, against the sandbox's recordkeeper and iJoin.

Every step a person takes is a click inside Airflow's UI (the hub's pages in its frame). The REST API
only sets up (turning the iJoin syncs' schedules on, as an administrator would once) and checks what
happened (a run's conf); iJoin's own API proves what it holds.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

import pytest

from tests.e2e.airflow_services import AirflowServices, airflow_services
from tests.e2e.receivers import wait_for
from tests.e2e.test_activity_monitor_browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_clerk_journeys_browser import RUN_MS, SHOTS
from tests.e2e.test_ijoin import ijoin

pytestmark = pytest.mark.e2e
PLAN_SYNC, PARTICIPANT_SYNC = "ijoin_plan_sync", "ijoin_participant_sync"
DAG_COUNT = 10
PLAN = "P0001"  # a plain active plan of the sandbox


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowServices, Any]]:
    from hub_sandbox import Sandbox

    box = Sandbox.start(tmp_path_factory.mktemp("admin-sandbox"), employees=200, seed=42, token_ttl=300)
    try:
        env = {**box.connection_env(), "AIRFLOW__BENEFITS_HUB__DRAFT_CHECK_SECONDS": "2"}
        with airflow_services(tmp_path_factory.mktemp("admin-airflow"), env, dag_count=DAG_COUNT) as services:
            for dag_id in (PLAN_SYNC, PARTICIPANT_SYNC):  # the administrator turned the schedules on once
                services.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
            # ...and each schedule ran once for every plan, as it would on a live hub.
            for dag_id in (PLAN_SYNC, PARTICIPANT_SYNC):
                assert wait_for(lambda d=dag_id: finished_runs(services, d) >= 1, timeout=RUN_MS / 1000), (
                    f"the scheduled {dag_id} did not run\n{services.logs()}"
                )
            yield services, box
    finally:
        box.stop()


@pytest.fixture(scope="module")
def page(hub: tuple[AirflowServices, Any]) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps`.", pytrace=False)
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.set_default_timeout(30_000)
            yield tab
        finally:
            browser.close()


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
    """Airflow's home page, then its navigation entry: the Plan Summary in Airflow's frame."""
    from playwright.sync_api import expect

    page.goto(services.base_url + "/")
    page.get_by_role("link", name="Plan Summary").click()
    frame = page.frame_locator("iframe")
    expect(frame.locator("h1")).to_have_text("Plan Summary")
    return frame


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

    page.goto(services.base_url + "/")
    page.get_by_role("link", name="Activity Monitor").click()
    frame = page.frame_locator("iframe")
    expect(frame.locator("h1")).to_have_text("Activity Monitor")
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
    run_page = open_review_run(page, services, old_review)
    expect(run_page.locator("#run-name .badge")).to_have_text("Successful with warnings")
    expect(run_page.locator("#summary")).to_contain_text("Superseded by a newer draft")

    # 4. The reviewer opens it in Required Actions, sees both closures side by side, and approves.
    page.wait_for_timeout(3_000)  # as a reader would: never within a second of the task parking
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

    page.wait_for_timeout(3_000)
    open_required_action(page, services, review)
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status").filter(has_text="review response successful")).to_be_visible()
    run_page = open_review_run(page, services, review)
    expect(run_page.locator("#run-name .badge")).to_have_text("Failed", timeout=RUN_MS)
    expect(run_page.locator(".reason")).to_contain_text(f"Fund {fund} has no ticker")
    assert ijoin(box, "GET", f"/api/v1/plans/{PLAN}")["active"] == current  # nothing activated
