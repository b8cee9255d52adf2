"""The Activity Monitor's HTML: what a person sees, escaped, never an SSN."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from benefits_hub.ui.activity import (
    ActivityFilter,
    ErrorCounter,
    RunFacts,
    ScheduleFacts,
    build_rows,
    run_row,
)
from benefits_hub.ui.detail import TaskFacts, run_detail
from benefits_hub.ui.render import detail_page, list_page, status_class

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
IMPORT = "plansource_deductions_import"


def listing(**kwargs: object) -> str:
    runs = [
        RunFacts(
            dag_id=IMPORT, run_id="manual__1", state="failed", start_date=NOW - timedelta(hours=2),
            end_date=NOW - timedelta(hours=1), summary={
                "status": "Completed with Errors", "integration_run_name": "<script>alert(1)</script>",
                "integration_name": "PlanSource Deductions Import", "errors": 4,
            },
        )
    ]  # fmt: skip
    schedules = [ScheduleFacts("retired_feed", "@daily", None, deleted=True)]
    rows = build_rows(runs, schedules, {})
    counter = ErrorCounter(since=NOW - timedelta(days=1), runs=1, records=4, integrations=["Import"])
    return list_page(
        rows, ActivityFilter(**kwargs), counter, [(IMPORT, "PlanSource Deductions Import")],
        root="/airflow", now=NOW, seen="2026-11-24T12:00:00+00:00",
    )  # fmt: skip


def test_list_shows_badges_greys_deleted_rows_and_escapes_names() -> None:
    html = listing()
    assert '<span class="badge status-completed-with-errors">Completed with Errors</span>' in html
    assert '<span class="badge status-scheduled-but-deleted">Scheduled but Deleted</span>' in html
    assert re.search(r'<tr class="row-schedule row-deleted"[^>]*data-dag-id="retired_feed"', html)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="/airflow/activity-monitor/runs/plansource_deductions_import/manual__1"' in html
    assert 'id="error-counter" class="counter has-errors" data-count="1"' in html


def test_sort_headers_toggle_the_order_and_keep_the_filter_and_the_visit() -> None:
    html = listing(statuses=["Failed"], sort="start", order="desc")
    start_header = re.search(r'<th aria-sort="descending"><a href="([^"]+)">Start / next run ▼', html)
    assert start_header is not None
    link = start_header.group(1).replace("&amp;", "&")
    assert "status=Failed" in link and "sort=start" in link and "order=asc" in link and "seen=" in link
    csv_link = re.search(r'id="csv-export" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert csv_link.startswith("/airflow/activity-monitor/api/runs.csv?") and "status=Failed" in csv_link
    assert '<option value="Failed" selected>Failed</option>' in html


def test_detail_page_lists_files_logs_summary_and_the_transaction_assistant() -> None:
    summary = {
        "integration_run_name": "Import 1", "integration_name": "PlanSource Deductions Import",
        "integration_reference_id": "manual__1", "status": "Completed with Errors", "errors": 2,
        "warnings": ["Employee 180-01-7851 has no export on record"],
        "failure_reason": "2 record(s) with errors",
        "error_files": ["file:///s/plansource_deductions_import/manual__1/error_file.csv"],
        "outcomes": [{"plan_id": "P0001", "status": "Failed", "messages": ["no EIN"]},
                     {"plan_id": "P0005", "status": "Successful with warnings",
                      "review_run_id": "review__P0005__P0005-v2"}],
    }  # fmt: skip
    facts = RunFacts(dag_id=IMPORT, run_id="manual__1", state="failed", summary=summary)
    detail = run_detail(
        run_row(facts, "Import"), "manual__1", summary, [TaskFacts("validate", -1, "success", 1)],
        IMPORT, summary,
    )  # fmt: skip
    html = detail_page(detail, root="")
    assert "180-01-7851" not in html and "***-**-7851" in html
    assert 'href="/activity-monitor/runs/plansource_deductions_import/manual__1/files/errors/0"' in html
    assert 'class="log-link" href="/dags/plansource_deductions_import/runs/manual__1/tasks/validate"' in html
    assert "target=" not in html  # Airflow's frame allows no top-level or new-window navigation
    assert 'href="/activity-monitor/runs/plansource_deductions_import/manual__1/transaction-assistant"' in (
        html
    )
    assert "<td>P0001</td>" in html  # per-plan outcomes as a table
    # A plan's draft review is a link to the review's own run page.
    assert 'href="/activity-monitor/runs/ijoin_plan_draft_review/review__P0005__P0005-v2">' in html
    # Plain links and forms; the one script is the app's own file (local times), never inline.
    assert re.findall(r"<script[^>]*>", html) == [
        '<script src="/activity-monitor/static/local-time.js" defer>'
    ]


def test_status_classes() -> None:
    assert status_class("In-Progress") == "status-in-progress"
    assert status_class("Successful with warnings") == "status-successful-with-warnings"


def test_script_shaped_summary_values_never_reach_the_page_as_markup() -> None:
    """Whoever may edit a run's summary (XCom) must not plant script for whoever opens the run."""
    attack = '"><script>alert(1)</script><img src=x onerror=alert(2) x="'
    summary = {
        key: attack
        for key in (
            "integration_run_name", "integration_name", "integration_reference_id", "user", "status",
            "failure_reason", "process_name", "integration_type", "start_date", "end_date",
        )
    }  # fmt: skip
    summary.update(
        warnings=[attack], error_files=[attack], source_files=[attack], output_file=attack,
        outcomes=[{"plan_id": attack, "status": attack, "messages": [attack]}], records_processed=attack,
    )  # fmt: skip
    facts = RunFacts(dag_id=IMPORT, run_id=attack, state="failed", summary=summary, run_name=attack)
    row = run_row(facts, attack)
    detail = run_detail(
        row, attack, summary, [TaskFacts(attack, 3, attack, 1, label=attack)], IMPORT, summary
    )
    for html in (detail_page(detail, root=""), list_page(
        [row], ActivityFilter(), ErrorCounter(since=NOW, runs=1, records=1, integrations=[attack]),
        [(IMPORT, attack)], root="", now=NOW, seen="",
    )):  # fmt: skip
        # Only escaped text is left of it: no tag opens, no attribute is closed early; the one script is
        # the app's own file.
        assert re.findall(r"<script[^>]*>", html) == [
            '<script src="/activity-monitor/static/local-time.js" defer>'
        ]
        assert "<img" not in html and attack not in html
        assert "status-unknown" in html or "badge status-failed" in html


def test_a_dry_run_says_so_in_the_list_and_on_its_page_with_counts_and_a_link_to_its_preview() -> None:
    export = "plansource_hcm_demographic_export"
    summary = {
        "integration_run_name": "Try the export", "integration_name": "PlanSource HCM Demographic Export",
        "integration_reference_id": "manual__2", "status": "Completed", "dry_run": True,
        "output_file": f"file:///s/{export}/manual__2/output/preview.csv",
        "would_update": 3, "would_terminate": 1, "would_create": 0,
    }  # fmt: skip
    facts = RunFacts(dag_id=export, run_id="manual__2", state="success", summary=summary)
    row = run_row(facts, "PlanSource HCM Demographic Export")
    assert row.dry_run
    html = detail_page(run_detail(row, "manual__2", summary, [], IMPORT, None), root="")
    assert "Dry run: nothing was sent." in html
    assert "3 would be updated (terminations and rehires among them), 1 would be terminated." in html
    assert "would be created" not in html
    assert f'id="preview-link" href="/activity-monitor/runs/{export}/manual__2/preview"' in html
    assert "dry run preview: what a real run would send" in html
    listed = list_page(
        [row], ActivityFilter(), ErrorCounter(since=NOW, runs=0, records=0, integrations=[]), [],
        root="", now=NOW, seen="",
    )  # fmt: skip
    assert 'class="tag dry-run"' in listed


def test_the_preview_page_lists_each_record_escaped() -> None:
    from benefits_hub.ui.render import preview_page

    export = "plansource_hcm_demographic_export"
    summary = {"integration_run_name": "Try", "status": "Completed", "dry_run": True,
               "would_update": 1}  # fmt: skip
    facts = RunFacts(dag_id=export, run_id="manual__2", state="success", summary=summary)
    detail = run_detail(run_row(facts, "Export"), "manual__2", summary, [], IMPORT, None)
    rows = [{"Employee": "E000010", "Action": "update", "Fields and new values": "city: <b>Ogden</b>"}]
    html = preview_page(detail, rows, root="", query="", total=1, shown_limit=1000)
    assert "<td>E000010</td><td>update</td><td>city: &lt;b&gt;Ogden&lt;/b&gt;</td>" in html
    assert 'id="preview-counts"><li>1 would be updated</li>' in html
