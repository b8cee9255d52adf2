"""The Activity Monitor's rows: statuses, names, schedule rows, filters, sorting, the error counter, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from benefits_hub.ui.activity import (
    SCHEDULED,
    SCHEDULED_BUT_DELETED,
    ActivityFilter,
    RunFacts,
    ScheduleFacts,
    apply_filter,
    build_rows,
    csv_lines,
    errors_since,
    format_duration,
    integration_names,
    run_row,
    run_status,
    sort_rows,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WITH_ERRORS = "Completed with Errors"


def summary(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "integration_run_name": "Export 1",
        "integration_name": "PlanSource HCM Demographic Export",
        "integration_reference_id": "manual__1",
        "user": "hr.lead",
        "integration_type": "Export",
        "status": status,
        "records_processed": 10,
        "records_created": 2,
        "errors": 0,
        "employees_processed": 9,
        **fields,
    }


def run(
    dag_id: str = "export",
    run_id: str = "manual__1",
    state: str = "success",
    start: datetime | None = NOW - timedelta(hours=1),
    minutes: int | None = 5,
    run_summary: dict[str, Any] | None = None,
    **fields: Any,
) -> RunFacts:
    end = start + timedelta(minutes=minutes) if start and minutes is not None else None
    if run_summary is not None:
        run_summary = {**run_summary, "integration_reference_id": run_id}
    fields.setdefault("queued_at", start)
    return RunFacts(
        dag_id=dag_id, run_id=run_id, state=state, start_date=start, end_date=end,
        summary=run_summary, **fields,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("state", "run_summary", "expected"),
    [
        ("queued", None, "In-Progress"),
        ("running", summary("Completed"), "In-Progress"),
        ("success", summary("Completed"), "Completed"),
        ("failed", summary("Completed with Errors"), "Completed with Errors"),
        ("success", summary("Successful with warnings"), "Successful with warnings"),
        ("failed", None, "Failed"),  # stopped before its summary
        ("success", None, "Failed"),
        ("success", {"status": "Activated"}, "Completed"),  # another vocabulary: Airflow's outcome
        ("failed", {"status": "Rejected"}, "Failed"),
    ],
)
def test_run_status_in_the_vendors_vocabulary(
    state: str, run_summary: dict[str, Any] | None, expected: str
) -> None:
    assert run_status(state, run_summary) == expected


def test_run_row_reads_the_summary_and_airflows_record() -> None:
    row = run_row(run(run_summary=summary("Completed with Errors", errors=3)), "Export")
    assert row.kind == "run" and row.status == "Completed with Errors"
    assert (row.run_name, row.reference_id, row.triggered_by) == ("Export 1", "manual__1", "hr.lead")
    assert (row.records_processed, row.records_created, row.errors, row.people_processed) == (10, 2, 3, 9)
    assert row.duration_seconds == 300
    assert row.detail_path == "/activity-monitor/runs/export/manual__1"


def test_run_row_without_summary_names_itself_and_the_scheduler() -> None:
    queued = run(state="queued", start=None, run_type="scheduled", run_after=NOW)
    row = run_row(queued, "PlanSource Deductions Import")
    assert row.status == "In-Progress" and row.start is None and row.end is None
    assert row.triggered_by == "scheduler"
    assert row.run_name == "PlanSource Deductions Import 2026-11-25 12:00:00"
    assert row.records_processed is None and row.duration_seconds is None


def test_a_sets_counts_are_its_members_sums() -> None:
    members = [
        {"member": "export", "records_processed": 200, "errors": 5},
        {"member": "import", "status": "Not run"},
    ]
    row = run_row(run(run_summary={"status": "Failed", "members": members}), "Set")
    assert row.records_processed == 200 and row.errors == 5 and row.records_created is None


def test_integration_name_comes_from_the_latest_summary_else_airflows_display_name() -> None:
    runs = [
        run(
            run_id="a",
            start=NOW - timedelta(days=2),
            run_summary=summary("Completed", integration_name="Old"),
        ),
        run(
            run_id="b",
            start=NOW - timedelta(days=1),
            run_summary=summary("Completed", integration_name="New"),
        ),
        run(run_id="c", start=NOW, run_summary=None),
    ]
    names = integration_names(runs, {"export": "export", "set": "Benefits Set"})
    assert names == {"export": "New", "set": "Benefits Set"}


def test_schedule_rows_scheduled_paused_and_deleted() -> None:
    schedules = [
        ScheduleFacts("export", "0 * * * *", NOW + timedelta(minutes=30)),
        ScheduleFacts("import", "0 22 * * *", NOW, paused=True),
        ScheduleFacts("retired", "@daily", NOW, deleted=True),
        ScheduleFacts("resubmit", "None", None),  # manual only: no schedule row
        ScheduleFacts("set", None, None),
    ]
    rows = {r.dag_id: r for r in build_rows([], schedules, {})}
    assert set(rows) == {"export", "import", "retired"}
    assert rows["export"].status == SCHEDULED and rows["export"].start == NOW + timedelta(minutes=30)
    assert rows["import"].paused
    assert rows["retired"].status == SCHEDULED_BUT_DELETED and rows["retired"].deleted
    assert rows["retired"].start is None  # it will never run


def rows_for_filtering() -> list[Any]:
    runs = [
        run("export", "r1", start=NOW - timedelta(days=1), run_summary=summary("Completed")),
        run(
            "export",
            "r2",
            start=NOW - timedelta(days=3),
            run_summary=summary("Completed with Errors", errors=4),
        ),
        run("import", "r3", start=NOW - timedelta(days=10), run_summary=summary("Failed")),
        run("import", "r4", state="queued", start=None, queued_at=NOW - timedelta(minutes=10)),
    ]
    return build_rows(runs, [ScheduleFacts("export", "0 * * * *", NOW)], {})


def test_default_window_is_the_last_seven_days_and_keeps_queued_runs_and_schedules() -> None:
    kept = apply_filter(rows_for_filtering(), ActivityFilter(), NOW)
    assert sorted(r.reference_id or r.status for r in kept) == ["Scheduled", "r1", "r2", "r4"]


def test_filters_by_integration_status_and_dates() -> None:
    rows = rows_for_filtering()
    by_status = apply_filter(rows, ActivityFilter(statuses=["Completed with Errors"]), NOW)
    assert [r.reference_id for r in by_status] == ["r2"]
    by_dag = apply_filter(rows, ActivityFilter(integrations=["import"], date_from=date(2026, 11, 1)), NOW)
    assert sorted(r.reference_id for r in by_dag) == ["r3", "r4"]
    one_day = ActivityFilter(date_from=date(2026, 11, 22), date_to=date(2026, 11, 22))
    assert [r.reference_id for r in apply_filter(rows, one_day, NOW) if r.kind == "run"] == ["r2"]
    future = ActivityFilter(date_from=date(2026, 12, 1))
    assert [r.status for r in apply_filter(rows, future, NOW)] == ["Scheduled"]


def test_filter_refuses_an_unknown_status_or_sort() -> None:
    with pytest.raises(ValidationError, match="unknown status"):
        ActivityFilter(statuses=["Done"])
    with pytest.raises(ValidationError, match="cannot sort"):
        ActivityFilter(sort="ssn")


def test_window_of_only_an_end_date_is_the_seven_days_before_it() -> None:
    since, until = ActivityFilter(date_to=date(2026, 11, 10)).window(NOW)
    assert until == datetime(2026, 11, 11, tzinfo=UTC)
    assert since == datetime(2026, 11, 4, tzinfo=UTC)


def test_sorting_both_ways_with_empty_values_last_and_queued_runs_by_queue_time() -> None:
    rows = [r for r in rows_for_filtering() if r.kind == "run"]
    newest_first = sort_rows(rows, "start", "desc")
    assert [r.reference_id for r in newest_first] == ["r4", "r1", "r2", "r3"]  # r4: queued, no start yet
    oldest_first = sort_rows(rows, "start", "asc")
    assert [r.reference_id for r in oldest_first] == ["r3", "r2", "r1", "r4"]
    by_end = sort_rows(rows, "end", "desc")
    assert by_end[-1].reference_id == "r4"  # no end yet: last whichever the order
    by_errors = sort_rows(rows, "errors", "desc")
    assert by_errors[0].reference_id == "r2"
    by_status = sort_rows(rows, "status", "asc")
    assert [r.status for r in by_status] == ["Completed", "Completed with Errors", "Failed", "In-Progress"]


def test_errors_since_last_look_counts_runs_that_ended_with_errors_after_it() -> None:
    rows = rows_for_filtering()
    counter = errors_since(rows, NOW - timedelta(days=5))
    assert (counter.runs, counter.records) == (1, 4)
    assert counter.integrations == ["PlanSource HCM Demographic Export"]
    assert errors_since(rows, NOW - timedelta(days=30)).runs == 2
    assert errors_since(rows, NOW).runs == 0


def test_csv_export_has_a_header_every_row_and_defuses_formulas() -> None:
    rows = build_rows(
        [run(run_summary=summary("Completed", integration_run_name='=HYPERLINK("http://x")'))],
        [ScheduleFacts("export", "0 * * * *", NOW)],
        {},
    )
    lines = list(csv.reader(io.StringIO("".join(csv_lines(rows)))))
    assert lines[0][:3] == ["Integration", "Run name", "Reference ID"]
    assert len(lines) == 3
    assert lines[1][1].startswith("'=")  # opens as text in a spreadsheet, not as a formula
    assert lines[1][7] == "Completed" and lines[1][6] == "5 min 00 s"
    assert lines[2][7] == "Scheduled"


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, ""), (42, "42 s"), (65, "1 min 05 s"), (7260, "2 h 01 min")]
)
def test_durations_read_as_people_say_them(seconds: int | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_a_queued_run_of_a_paused_dag_says_it_waits_and_the_name_it_was_given() -> None:
    from benefits_hub.ui.render import row_html

    queued = RunFacts(dag_id="export", run_id="manual__1", state="queued", run_name="Clerk export")
    running = RunFacts(dag_id="import", run_id="manual__2", state="running")
    schedules = [
        ScheduleFacts("export", "0 * * * *", None, paused=True),
        ScheduleFacts("import", "None", None),
    ]
    built = build_rows([queued, running], schedules, {"export": "Export", "import": "Import"})
    rows = {row.reference_id: row for row in built if row.kind == "run"}
    assert rows["manual__1"].paused and rows["manual__1"].run_name == "Clerk export"
    assert not rows["manual__2"].paused
    assert "waiting: integration paused" in row_html(rows["manual__1"], "")
    assert "pause toggle" in row_html(rows["manual__1"], "")


def test_a_run_waiting_on_a_persons_answer_says_waiting_for_approval_and_links_required_actions() -> None:
    from benefits_hub.ui.render import row_html

    held = RunFacts(dag_id="export", run_id="manual__3", state="running", awaiting=("hold", -1))
    answered = RunFacts(dag_id="export", run_id="manual__4", state="success", awaiting=("hold", -1))
    plain = RunFacts(dag_id="export", run_id="manual__5", state="running")
    rows = {r.reference_id: r for r in build_rows([held, answered, plain], [], {"export": "Export"})}
    assert rows["manual__3"].status == "In-Progress" and rows["manual__3"].waiting_for_approval
    assert rows["manual__3"].approval_path == "/dags/export/runs/manual__3/tasks/hold/required_actions"
    assert not rows["manual__4"].waiting_for_approval and not rows["manual__5"].waiting_for_approval
    html = row_html(rows["manual__3"], "/base")
    link = "/base/dags/export/runs/manual__3/tasks/hold/required_actions"
    assert f'<a class="tag waiting-approval" href="{link}"' in html
    assert "Waiting for approval" in html and "Waiting for approval" not in row_html(rows["manual__5"], "")
