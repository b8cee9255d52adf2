"""A payroll clerk's journeys, clicked in real Chromium on a whole Airflow (api-server, scheduler,
dag-processor, triggerer) started from a fresh AIRFLOW_HOME, against the sandbox.

Every step a person takes is a click or a keystroke inside Airflow's own UI (the Activity Monitor is
shown in its frame); the REST API only sets up data (the import run with error records) and checks
what happened (no run started, the DAG still paused, the params a run carried). The HCM database is
read directly to prove each corrected deduction landed exactly once.

The screenshots it takes are the README's: ``make screenshots`` runs this test with
``HUB_SCREENSHOT_DIR=docs/screenshots``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benefits_hub.ui import urls
from hub_sandbox.coverages import special_coverages
from tests.e2e.airflow_services import AirflowServices
from tests.e2e.browser import chromium_tab, open_from_navigation, sandboxed_airflow
from tests.e2e.receivers import wait_for
from tests.e2e.test_demographic_export import GOOD

pytestmark = pytest.mark.e2e
EXPORT, IMPORT = "plansource_hcm_demographic_export", "plansource_deductions_import"
RESUBMIT = "plansource_deductions_resubmit"
FAILING = {category: ids[0] for category, ids in special_coverages(200).items()}
SHOTS = Path(os.environ.get("HUB_SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "test-artifacts")
RUN_MS = 180_000  # a real run through the scheduler: queued, four or five tasks, summary


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowServices, Any]]:
    with sandboxed_airflow(tmp_path_factory, "journey") as found:
        yield found


@pytest.fixture(scope="module")
def page(hub: tuple[AirflowServices, Any]) -> Iterator[Any]:
    with chromium_tab(SHOTS) as tab:
        yield tab


def open_activity_monitor(page: Any, services: AirflowServices) -> Any:
    return open_from_navigation(page, services, "Activity Monitor")


def wait_finished(frame: Any, statuses: str) -> None:
    """The run page reloads itself while In-Progress; wait for a finished status badge."""
    from playwright.sync_api import expect

    expect(frame.locator("#run-name .badge")).to_have_text(statuses, timeout=RUN_MS)


def reconcile_from_the_monitor(page: Any, services: AirflowServices, run_name: str, **params: str) -> Any:
    """Activity Monitor → Run an Integration → Hub Reconciliation with ``params`` (field ids), then its
    run page until it ends Completed: the frame, on that page."""
    from playwright.sync_api import expect

    frame = open_activity_monitor(page, services)
    frame.locator("#run-an-integration summary").click()
    frame.locator('a.run-link[data-dag-id="hub_reconciliation"]').click()
    for name, value in params.items():
        frame.locator(f"#param-{name}").fill(value)
    frame.locator("#param-integration_run_name").fill(run_name)
    frame.locator("#run").click()
    expect(frame.locator("#run-name")).to_contain_text(run_name)
    wait_finished(frame, "Completed")
    return frame


def open_run(frame: Any, run_id: str) -> None:
    from urllib.parse import quote

    frame.locator(f'#activity a[href$="/{quote(run_id, safe=":+")}"]').click()


def hcm_deductions(box: Any) -> list[dict[str, Any]]:
    with sqlite3.connect(box.hcm_db_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM hcm_payroll_deduction")]


def test_1_the_clerk_runs_the_export_bad_values_first(hub: tuple[AirflowServices, Any], page: Any) -> None:
    import re

    from playwright.sync_api import expect

    services, _box = hub
    assert services.is_paused(EXPORT)  # a fresh install: schedules are off until someone turns them on
    frame = open_activity_monitor(page, services)
    frame.locator("#run-an-integration summary").click()
    frame.locator(f'a.run-link[data-dag-id="{EXPORT}"]').click()
    expect(frame.locator("h1")).to_contain_text("Run Integration: PlanSource HCM Demographic Export")

    # Bad values: refused next to each field in the hub's words; nothing starts, nothing unpauses.
    frame.locator("#param-include_employees").fill(f"{GOOD[0]}, {GOOD[1]}")
    frame.locator("#param-lookback_days").fill("40")
    frame.locator("#run").click()
    expect(frame.locator("#form-refused")).to_be_visible()
    expect(frame.locator("#problem-include_employees")).to_contain_text("separated by commas with no spaces")
    expect(frame.locator("#problem-lookback_days")).to_contain_text("from 1 to 31 days, got 40")
    expect(frame.locator("#param-lookback_days")).to_have_value("40")  # never silently changed
    assert services.runs(EXPORT) == [] and services.is_paused(EXPORT)

    # Good values: the run starts and the page follows it to its Run Summary.
    frame.locator("#param-include_employees").fill(f"{GOOD[0]},{GOOD[1]}")
    frame.locator("#param-lookback_days").fill("")
    frame.locator("#param-delta").select_option("false")
    frame.locator("#param-integration_run_name").fill("Clerk export")
    frame.locator("#run").click()
    expect(frame.locator("#run-name")).to_contain_text("Clerk export")
    wait_finished(frame, "Completed")
    expect(frame.locator('#summary tr[data-field="records_processed"] td')).to_have_text("2")
    expect(frame.locator('#params tr[data-param="include_employees"] td')).to_have_text(
        f"{GOOD[0]},{GOOD[1]}"
    )
    frame.locator("#summary").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "run-summary.png"))
    assert re.search(r"/dags/|/plugin/", page.url)  # still inside Airflow's UI


def test_2_the_clerk_corrects_error_records_until_none_is_left(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    services, box = hub
    # Set-up through REST: the initial import of the plan year, which leaves four error records.
    conf = {"delta": True, "deduction_start_date": "2025-10-01", "plan_year_start_date": "2025-12-31"}
    started = services.api("POST", f"/dags/{IMPORT}/dagRuns", json={"logical_date": None, "conf": conf})
    assert started.status_code == 200, started.text
    import_run = started.json()["dag_run_id"]
    services.api("PATCH", f"/dags/{IMPORT}", json={"is_paused": False}).raise_for_status()

    frame = open_activity_monitor(page, services)
    open_run(frame, import_run)
    wait_finished(frame, "Completed with Errors")
    assert import_run in frame.locator("dl.meta").inner_text()
    expect(frame.locator("#runbook")).to_have_attribute("href", f"/dags/{IMPORT}")
    # The error count in the list opens the error records, each with what to do.
    frame.locator('a:has-text("← Activity Monitor")').click()
    frame.locator(
        f'#activity tr:has(a[href$="{urls.run_detail_path(IMPORT, import_run)}"]) a.error-count'
    ).click()
    expect(frame.locator("#error-records tbody tr")).to_have_count(5)  # 4 records; the premium has 2 rows
    expect(frame.locator("#error-records")).to_contain_text("ask your benefits administrator to map it")
    frame.locator('p a:has-text("PlanSource Deductions Import")').first.click()
    frame.locator("#go-to-assistant").click()
    expect(frame.locator("h1")).to_have_text("Transaction Assistant")
    expect(frame.locator("#open-count")).to_have_text("4")

    def record(category: str) -> Any:
        return frame.locator(f'.record[data-key$="#{FAILING[category]}"]')

    negative, unmapped = record("negative_amount"), record("unmapped_code")
    unknown, ends_early = record("unknown_employee"), record("end_before_start")
    expect(unknown.locator(".elsewhere")).to_contain_text("HR administrator")
    expect(unmapped.locator(".elsewhere")).to_contain_text("benefits administrator")
    # A bad value is refused on the page, by the import's own rule: no run starts.
    negative.locator('input[data-field="subscriber_premium"]').fill("-5.00")
    frame.locator("#resubmit").click()
    expect(frame.locator("#form-refused")).to_be_visible()
    expect(negative.locator(".field-problem").first).to_contain_text("is negative")
    assert services.runs(RESUBMIT) == []
    page.screenshot(path=str(SHOTS / "transaction-assistant.png"), full_page=True)

    # Two records corrected with clerk labels; the other two are retried as they are.
    negative.locator('input[data-field="subscriber_premium"]').fill("12.50")
    negative.locator('input[data-field="subscriber_pretax_premium"]').fill("12.50")
    unmapped.locator('input[data-field="plan_payroll_mapping_code"]').fill("MED-PPO")
    frame.locator("#resubmit").click()
    wait_finished(frame, "Completed with Errors")
    expect(frame.locator("#assistant-state")).to_contain_text("2 of 4 error records still open")

    # From the resubmission's own page: the last two, one corrected and one dismissed.
    frame.locator("#go-to-assistant").click()
    expect(frame.locator("#open-count")).to_have_text("2")
    expect(frame.locator("#settled-records tbody tr")).to_have_count(2)
    ends_early.locator('input[data-field="termination_date"]').fill("")
    unknown.locator('input[type="checkbox"]').check()
    unknown.locator('input[aria-label="Reason for dismissing"]').fill("employee left, not needed")
    frame.locator("#resubmit").click()
    wait_finished(frame, "Completed")
    expect(frame.locator('#summary tr[data-field="records_dismissed"] td')).to_have_text("1")

    # The original import's page says all corrected, and links its resubmissions.
    frame.locator('a:has-text("← Activity Monitor")').click()
    open_run(frame, import_run)
    expect(frame.locator("#assistant-state")).to_have_text("All 4 error records corrected.")
    expect(frame.locator("#resubmissions a")).to_have_count(2)
    # Each corrected deduction is in the HCM exactly once; the dismissed one is not.
    by_id: dict[str, int] = {}
    for row in hcm_deductions(box):
        by_id[row["plansource_coverage_id"]] = by_id.get(row["plansource_coverage_id"], 0) + 1
    for category in ("negative_amount", "unmapped_code", "end_before_start"):
        assert by_id.get(FAILING[category]) == 1, category
    assert FAILING["unknown_employee"] not in by_id


def test_3_the_clerk_reruns_a_past_run_with_its_params(hub: tuple[AirflowServices, Any], page: Any) -> None:
    from playwright.sync_api import expect

    services, _box = hub
    frame = open_activity_monitor(page, services)
    page.screenshot(path=str(SHOTS / "activity-monitor.png"), full_page=True)
    frame.locator('#activity a:has-text("Clerk export")').first.click()
    frame.locator("#rerun").click()
    expect(frame.locator("h1")).to_contain_text("Re-Run: PlanSource HCM Demographic Export")
    expect(frame.locator("#param-integration_run_name")).to_have_value("Clerk export (re-run 1)")
    expect(frame.locator("#param-include_employees")).to_have_value(f"{GOOD[0]},{GOOD[1]}")
    expect(frame.locator("#param-delta")).to_have_value("false")
    page.screenshot(path=str(SHOTS / "re-run.png"), full_page=True)
    frame.locator("#run").click()
    expect(frame.locator("#run-name")).to_contain_text("Clerk export (re-run 1)")
    wait_finished(frame, "Completed")
    runs = {r["conf"].get("integration_run_name"): r["conf"] for r in services.runs(EXPORT) if r["conf"]}
    original, rerun = runs["Clerk export"], runs["Clerk export (re-run 1)"]
    assert {k: v for k, v in rerun.items() if k != "integration_run_name"} == {
        k: v for k, v in original.items() if k != "integration_run_name"
    }


def test_4_the_clerk_tries_the_export_as_a_dry_run_and_reads_its_preview(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    from datetime import UTC, datetime

    import requests
    from playwright.sync_api import expect

    from hub_sandbox.generator import touch_employees

    services, box = hub
    person = GOOD[2]
    touch_employees(box.hcm_db_path, [person], datetime.now(UTC), {"city": "Dry Creek"})
    held = requests.get(f"{box.plansource_url}/sandbox/subscribers/{person}", timeout=10).json()

    frame = open_activity_monitor(page, services)
    frame.locator("#run-an-integration summary").click()
    frame.locator(f'a.run-link[data-dag-id="{EXPORT}"]').click()
    frame.locator("#param-include_employees").fill(person)
    frame.locator("#param-delta").select_option("false")
    frame.locator("#param-dry_run").select_option("true")
    frame.locator("#param-integration_run_name").fill("Clerk dry run")
    frame.locator("#run").click()
    expect(frame.locator("#run-name")).to_contain_text("Clerk dry run")
    wait_finished(frame, "Completed")
    expect(frame.locator("#dry-run")).to_contain_text("Dry run: nothing was sent.")
    expect(frame.locator("#dry-run")).to_contain_text("1 would be updated")

    frame.locator("#preview-link").click()
    expect(frame.locator("h1")).to_contain_text("Dry run preview")
    expect(frame.locator("#preview tbody tr")).to_have_count(1)
    expect(frame.locator("#preview tbody tr")).to_contain_text(person)
    expect(frame.locator("#preview tbody tr")).to_contain_text("city: Dry Creek")
    page.screenshot(path=str(SHOTS / "dry-run-preview.png"), full_page=True)
    # Nothing reached PlanSource.
    now = requests.get(f"{box.plansource_url}/sandbox/subscribers/{person}", timeout=10).json()
    assert now == held

    frame = open_activity_monitor(page, services)
    row = frame.locator('#activity tr:has(a:has-text("Clerk dry run"))')
    expect(row.locator(".tag.dry-run")).to_have_text("dry run")


def test_5_the_clerk_reconciles_and_repairs_a_discrepancy(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    services, box = hub
    person = GOOD[5]  # in step in both pairs (no planted sandbox case, no Transaction Assistant fix)

    def city() -> str:
        with sqlite3.connect(box.plansource_state_path) as conn:
            return conn.execute(
                "SELECT city FROM subscriber WHERE employee_number = ?", (person,)
            ).fetchone()[0]

    def amount() -> str:
        with sqlite3.connect(box.hcm_db_path) as conn:
            return conn.execute(
                f"SELECT employee_amount FROM hcm_payroll_deduction WHERE {deduction}", (payee, *key)
            ).fetchone()[0]

    # Someone changes the employee in PlanSource by hand, and their deduction in payroll: not in step.
    held = city()
    with sqlite3.connect(box.plansource_state_path) as conn:
        conn.execute("UPDATE subscriber SET city = 'Ogdenville' WHERE employee_number = ?", (person,))
    deduction = "person_number = ? AND deduction_code = ? AND effective_date = ?"
    with sqlite3.connect(box.hcm_db_path) as conn:
        payee, *key = conn.execute(
            "SELECT person_number, deduction_code, effective_date FROM hcm_payroll_deduction "
            "WHERE end_date IS NULL AND person_number = ? ORDER BY deduction_code LIMIT 1", (person,)
        ).fetchone()  # fmt: skip
    loaded = amount()
    with sqlite3.connect(box.hcm_db_path) as conn:
        conn.execute(
            f"UPDATE hcm_payroll_deduction SET employee_amount = employee_amount + 10 WHERE {deduction}",
            (payee, *key),
        )

    frame = reconcile_from_the_monitor(
        page, services, "Clerk reconciliation",
        pairs="hcm_plansource_demographics,plansource_hcm_deductions", include_employees=person,
    )  # fmt: skip
    expect(frame.locator("#discrepancies-found")).to_contain_text("Discrepancies found: 2.")

    frame.locator("#discrepancies-link").click()
    row = frame.locator('#discrepancies tr[data-kind="field_differs"]')
    expect(row).to_contain_text("City")  # the field in a clerk's words
    expect(row).to_contain_text("PlanSource: Ogdenville")
    payroll_row = frame.locator('#discrepancies tr[data-kind="amount_differs"]')
    expect(payroll_row).to_contain_text("Employee premium")
    page.screenshot(path=str(SHOTS / "discrepancies.png"), full_page=True)
    row.locator('input[type="checkbox"]').check()
    payroll_row.locator('input[type="checkbox"]').check()
    frame.locator("#repair-selected").click()
    # One repair per integration that owns a chosen discrepancy; the page follows the first.
    expect(frame.locator("#run-name")).to_contain_text("PlanSource Deductions Repair")
    wait_finished(frame, "Completed")
    assert amount() == loaded  # payroll holds PlanSource's amount again
    assert wait_for(lambda: city() == held, timeout=RUN_MS / 1000)  # the demographics repair, alongside

    # The next reconciliation (a Re-Run of the first) finds nothing left.
    frame = open_activity_monitor(page, services)
    frame.locator('#activity a:has-text("Clerk reconciliation")').first.click()
    frame.locator("#rerun").click()
    frame.locator("#run").click()
    expect(frame.locator("#run-name")).to_contain_text("Clerk reconciliation (re-run 1)")
    wait_finished(frame, "Completed")
    expect(frame.locator('#summary tr[data-field="discrepancies"] td')).to_have_text("0")
    expect(frame.locator("#discrepancies-found")).to_have_count(0)


def test_6_a_mass_termination_waits_for_approval_and_the_approver_releases_it(
    hub: tuple[AirflowServices, Any], page: Any
) -> None:
    """A bad HCM load terminates 30 % of the active employees: the export holds before delivery, the
    Activity Monitor says so, and the approver reads the counts in Required Actions and approves."""
    import time
    from datetime import UTC, datetime

    from playwright.sync_api import expect

    from hub_sandbox.generator import touch_employees
    from tests.e2e.test_circuit_breaker import LEAVING, active_good_employees

    services, box = hub
    active = [n for n in active_good_employees(box) if n not in GOOD]
    leavers = active[: int(len(active) * 0.3)]
    touch_employees(box.hcm_db_path, leavers, datetime.now(UTC), LEAVING)
    time.sleep(1.05)  # the window ends before the second its run starts in

    frame = open_activity_monitor(page, services)
    frame.locator("#run-an-integration summary").click()
    frame.locator(f'a.run-link[data-dag-id="{EXPORT}"]').click()
    frame.locator("#param-lookback_days").fill("1")
    frame.locator("#param-integration_run_name").fill("After the HCM load")
    frame.locator("#run").click()
    expect(frame.locator("#waiting-approval")).to_contain_text(
        f"{len(leavers)} of", timeout=RUN_MS
    )  # the run's page, reloading itself while it waits
    expect(frame.locator("#waiting-approval")).to_contain_text("above the 2% limit")

    # The Activity Monitor: the held run says so, and its tag opens Required Actions (in the frame).
    frame = open_activity_monitor(page, services)
    held = frame.locator('#activity tr:has(a:has-text("After the HCM load"))')
    expect(held.locator(".tag.waiting-approval")).to_have_text("Waiting for approval")
    run_id = held.locator("td.ref").inner_text().strip()
    assert wait_for_parked(services, run_id)
    held.locator(".tag.waiting-approval").click()
    approval = page.frame_locator("iframe")
    expect(approval.get_by_text("Delivery held: PlanSource HCM Demographic Export").first).to_be_visible(
        timeout=30_000
    )
    expect(approval.get_by_role("cell", name="Terminations", exact=True)).to_be_visible()
    page.screenshot(path=str(SHOTS / "held-delivery-approval.png"), full_page=True)
    approval.get_by_role("button", name="Approve").click()
    expect(approval.get_by_role("status").filter(has_text="response successful")).to_be_visible()

    # Delivered once approved: the run's summary says who let it through; PlanSource has each leaver once.
    frame = open_activity_monitor(page, services)
    open_run(frame, run_id)
    wait_finished(frame, "Completed")
    expect(frame.locator("#warnings")).to_contain_text("Approved by")
    expect(frame.locator('#summary tr[data-field="terminations"] td')).to_have_text(str(len(leavers)))
    for number in leavers:
        changes = box_changes(box, number)
        assert changes.count("terminated") == 1, (number, changes)


def wait_for_parked(services: AirflowServices, run_id: str) -> bool:
    """The scheduler has seen the hold's process end (answering sooner races Airflow 3.3's
    executor-event handling: see ``AirflowServices.parked``). A person takes longer; a test waits."""
    from tests.e2e.receivers import wait_for

    return wait_for(lambda: services.parked(EXPORT, "hold", run_id), timeout=60)


def box_changes(box: Any, employee_number: str) -> list[str]:
    """The kinds of change PlanSource recorded for one employee."""
    import requests

    answer = requests.get(
        f"{box.plansource_url}/sandbox/changes", params={"employee_number": employee_number}, timeout=10
    )
    return [change["kind"] for change in answer.json()["data"]]
