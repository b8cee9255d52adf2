"""The Activity Monitor as a person uses it: headless Chromium (Debian's, driven by Playwright) on a real
api-server with the plugin, after real DAG runs. Screenshots go to test-artifacts/ at the repo root."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from benefits_hub.ui import urls
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.conftest import run_dag
from tests.e2e.test_demographic_export import GOOD

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EXPORT, RESUBMIT = "plansource_hcm_demographic_export", "plansource_deductions_resubmit"
WAIT_MS = 30_000


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium; never a downloaded browser. Missing it is a failure, not a skip."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make system-deps` (installs Debian's chromium package).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_a_person_sees_the_runs_filters_them_and_opens_one(
    sandbox: Any, api_server: str, browser: Any
) -> None:
    from playwright.sync_api import expect

    completed = run_dag(EXPORT, {"delta": False, "include_employees": GOOD[1]})
    refused = run_dag(RESUBMIT, {"integration_reference_id": "no-such-run"})
    assert completed.summary["status"] == "Completed" and refused.summary["status"] == "Failed"
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(WAIT_MS)

    # The Airflow UI's navigation has the page; it opens inside the UI.
    page.goto(api_server + "/")
    page.get_by_role("link", name="Activity Monitor").click()
    framed = page.frame_locator("iframe")
    expect(framed.locator("h1")).to_have_text("Activity Monitor")
    expect(framed.locator("#activity tbody tr").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "activity-monitor-in-airflow.png"))

    # The page itself: both runs, each with its status badge.
    page.goto(api_server + urls.list_path())
    rows = page.locator("#activity tbody tr")
    completed_row = rows.filter(has_text=completed.run_id)
    refused_row = rows.filter(has_text=refused.run_id)
    expect(completed_row.locator(".badge")).to_have_text("Completed")
    expect(refused_row.locator(".badge")).to_have_text("Failed")
    expect(completed_row).to_contain_text("PlanSource HCM Demographic Export")
    expect(rows.filter(has_text="Next scheduled run").first).to_be_visible()  # the Scheduled rows
    page.screenshot(path=str(ARTIFACTS / "activity-monitor.png"), full_page=True)

    # A filter of several statuses changes what is visible: only runs that ended badly remain.
    page.select_option('select[name="status"]', ["Failed", "Completed with Errors"])
    page.get_by_role("button", name="Apply").click()
    expect(page.locator('select[name="status"]')).to_have_values(["Completed with Errors", "Failed"])
    expect(refused_row).to_have_count(1)
    expect(completed_row).to_have_count(0)
    shown = rows.evaluate_all("rows => rows.map(row => row.dataset.status)")
    assert shown and set(shown) <= {"Failed", "Completed with Errors"}
    # Times read in the viewer's time zone, to the second (the page's own script; UTC without it).
    expect(rows.first.locator("time").first).to_have_attribute("title", re.compile(r"\d{2}:\d{2}:\d{2} UTC$"))

    # Opening the run shows its summary, why it failed and links to its task logs.
    page.locator(f'a[href$="{urls.run_detail_path(RESUBMIT, refused.run_id)}"]').click()
    expect(page.locator("#run-name")).to_contain_text(refused.summary["integration_run_name"])
    expect(page.locator("#run-name .badge")).to_have_text("Failed")
    expect(page.locator(".reason")).to_contain_text(
        "no deductions import run or Transaction Assistant run 'no-such-run'"
    )
    expect(page.locator('#summary tr[data-field="status"] .badge')).to_have_text("Failed")
    log_link = page.locator("#task-logs a.log-link").first
    expect(log_link).to_have_attribute(
        "href", f"/dags/{RESUBMIT}/runs/{quote(refused.run_id, safe='')}/tasks/validate"
    )
    # Inside Airflow's frame the link works too: clicked, the frame lands on the task's page.
    page.goto(api_server + "/")
    page.get_by_role("link", name="Activity Monitor").click()
    framed.locator(f'a[href$="{urls.run_detail_path(RESUBMIT, refused.run_id)}"]').click()
    framed.locator("#task-logs a.log-link").first.click()
    landed = f"/dags/{RESUBMIT}/runs/{quote(refused.run_id, safe='')}/tasks/validate"
    page.wait_for_function(
        "path => Array.from(document.querySelectorAll('iframe')).some("
        "f => { try { return f.contentWindow.location.pathname.endsWith(path) }"
        " catch (e) { return false } })",
        arg=landed,
    )
    page.screenshot(path=str(ARTIFACTS / "activity-monitor-run.png"), full_page=True)
