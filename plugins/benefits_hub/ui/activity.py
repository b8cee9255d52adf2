"""The Activity Monitor's rows, as pure functions of what Airflow records.

A row is one DAG run of an integration, or one scheduled integration (its next run). Its status is in
the vendors' vocabulary (:class:`~benefits_hub.models.RunStatus`):

- a run still queued or running is **In-Progress**;
- a finished run shows the status of its Run Summary (the ``summary`` task's return value);
- a finished run without a Run Summary is **Failed** (it stopped before it could say how it went);
- a scheduled integration is **Scheduled** (its next run), and one whose DAG file is gone while it was
  scheduled is **Scheduled but Deleted** (Airflow marks its DAG stale).

Everything here is computed from :class:`RunFacts` and :class:`ScheduleFacts`, which
:mod:`benefits_hub.ui.records` reads from Airflow's metadata DB: no second record of runs.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from benefits_hub.models import RunStatus
from benefits_hub.pii import mask_field
from benefits_hub.staging import SafeCsvWriter
from benefits_hub.ui import urls

SCHEDULED = "Scheduled"
SCHEDULED_BUT_DELETED = "Scheduled but Deleted"
RUN_STATUSES: tuple[str, ...] = tuple(status.value for status in RunStatus)
STATUSES: tuple[str, ...] = (*RUN_STATUSES, SCHEDULED, SCHEDULED_BUT_DELETED)
# The statuses the "errors since you last looked" counter counts.
ERROR_STATUSES = frozenset({RunStatus.COMPLETED_WITH_ERRORS.value, RunStatus.FAILED.value})
# Airflow's DagRunState values of a run that has not finished.
UNFINISHED_STATES = frozenset({"queued", "running"})
DEFAULT_DAYS = 7


@dataclass(frozen=True)
class RunFacts:
    """One DAG run as Airflow's ``dag_run`` row records it, with its Run Summary (or None)."""

    dag_id: str
    run_id: str
    state: str
    run_type: str = "manual"
    triggering_user_name: str | None = None
    queued_at: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    run_after: datetime | None = None
    summary: dict[str, Any] | None = None
    run_name: str | None = None  # the name the run was triggered with (its summary says it once done)
    # (task_id, map_index) of a human-in-the-loop request nobody has answered: a held delivery, a review
    awaiting: tuple[str, int] | None = None

    @property
    def anchor(self) -> datetime | None:
        """When the run happened, for the date range and the default sort: started, else queued."""
        return self.start_date or self.queued_at or self.run_after


@dataclass(frozen=True)
class ScheduleFacts:
    """An integration DAG's schedule as Airflow's ``dag`` row records it."""

    dag_id: str
    schedule: str | None  # Airflow's timetable summary, e.g. "0 * * * *"; None or "None": not scheduled
    next_run_at: datetime | None  # when the scheduler will create the next run
    paused: bool = False
    deleted: bool = False  # Airflow marked the DAG stale: its file is gone

    @property
    def scheduled(self) -> bool:
        return bool(self.schedule) and self.schedule != "None"


class ActivityRow(BaseModel):
    """One line of the Activity Monitor (also its JSON and CSV form)."""

    kind: Literal["run", "schedule"]
    dag_id: str
    integration: str
    run_name: str | None = None
    reference_id: str | None = None
    triggered_by: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    duration_seconds: int | None = None
    queued: datetime | None = None  # when Airflow queued the run (a queued run has no start yet)
    status: str
    integration_type: str | None = None
    records_processed: int | None = None
    records_created: int | None = None
    errors: int | None = None
    people_processed: int | None = None  # employees, or participants for the iJoin syncs
    schedule: str | None = None
    paused: bool = False
    deleted: bool = False
    detail_path: str | None = None
    dry_run: bool = False  # triggered with Dry Run: nothing was sent
    # Waiting for a person's answer in Airflow's Required Actions (a held delivery, a draft review)
    approval_path: str | None = None

    @property
    def waiting_for_approval(self) -> bool:
        return self.approval_path is not None


def run_status(state: str, summary: dict[str, Any] | None) -> str:
    """The run's status in the vendors' vocabulary (see the module docstring)."""
    if str(state) in UNFINISHED_STATES:
        return RunStatus.IN_PROGRESS.value
    if not summary:
        return RunStatus.FAILED.value
    status = summary.get("status")
    if status in RUN_STATUSES:
        return str(status)
    # A summary in another vocabulary: say only whether Airflow saw the run succeed.
    return RunStatus.COMPLETED.value if str(state) == "success" else RunStatus.FAILED.value


def integration_names(runs: Iterable[RunFacts], display_names: dict[str, str]) -> dict[str, str]:
    """Each DAG's integration name: its latest Run Summary's, else Airflow's display name for the DAG."""
    names = dict(display_names)
    latest: dict[str, datetime] = {}
    floor = datetime.min.replace(tzinfo=UTC)
    for run in runs:
        name = (run.summary or {}).get("integration_name")
        when = run.anchor or floor
        if name and when >= latest.get(run.dag_id, floor):
            names[run.dag_id] = str(name)
            latest[run.dag_id] = when
    return names


def _count(summary: dict[str, Any], key: str) -> int | None:
    value = summary.get(key)
    if isinstance(value, int):
        return value
    members = summary.get("members")
    if isinstance(members, list):
        # An integration set's summary lists its members' counts: the set's are their sum.
        counts = [m.get(key) for m in members if isinstance(m, dict) and isinstance(m.get(key), int)]
        return sum(counts) if counts else None
    return None


def run_row(run: RunFacts, integration: str) -> ActivityRow:
    summary = run.summary or {}
    when = run.start_date or run.anchor
    triggered_by = summary.get("user") or run.triggering_user_name
    if not triggered_by:
        triggered_by = "scheduler" if run.run_type == "scheduled" else run.run_type
    duration = None
    if run.start_date and run.end_date:
        duration = max(0, int((run.end_date - run.start_date).total_seconds()))
    return ActivityRow(
        kind="run",
        dag_id=run.dag_id,
        integration=integration,
        run_name=summary.get("integration_run_name")
        or run.run_name
        or (f"{integration} {when:%Y-%m-%d %H:%M:%S}" if when else integration),
        reference_id=summary.get("integration_reference_id") or run.run_id,
        triggered_by=str(triggered_by),
        start=run.start_date,
        end=run.end_date if str(run.state) not in UNFINISHED_STATES else None,
        duration_seconds=duration,
        queued=run.queued_at or run.run_after,
        status=run_status(run.state, run.summary),
        integration_type=summary.get("integration_type"),
        records_processed=_count(summary, "records_processed"),
        records_created=_count(summary, "records_created"),
        errors=_count(summary, "errors"),
        people_processed=_count(summary, "employees_processed"),
        detail_path=urls.run_detail_path(run.dag_id, run.run_id),
        dry_run=summary.get("dry_run") is True,
        approval_path=(
            urls.airflow_required_action_path(run.dag_id, run.run_id, *run.awaiting)
            if run.awaiting and str(run.state) in UNFINISHED_STATES
            else None
        ),
    )


def schedule_row(schedule: ScheduleFacts, integration: str) -> ActivityRow | None:
    """The row of a scheduled integration (its next run), or None when it has no schedule."""
    if not schedule.scheduled:
        return None
    return ActivityRow(
        kind="schedule",
        dag_id=schedule.dag_id,
        integration=integration,
        start=None if schedule.deleted else schedule.next_run_at,
        status=SCHEDULED_BUT_DELETED if schedule.deleted else SCHEDULED,
        schedule=schedule.schedule,
        paused=schedule.paused,
        deleted=schedule.deleted,
    )


def build_rows(
    runs: Sequence[RunFacts], schedules: Sequence[ScheduleFacts], display_names: dict[str, str]
) -> list[ActivityRow]:
    """Every run row and every schedule row, unfiltered and unsorted."""
    names = integration_names(runs, display_names)
    rows = [run_row(run, names.get(run.dag_id, run.dag_id)) for run in runs]
    paused = {schedule.dag_id for schedule in schedules if schedule.paused}
    for row, run in zip(rows, runs, strict=True):
        # A queued run of a paused DAG never starts by itself: the row says so (``paused``).
        row.paused = run.state == "queued" and run.dag_id in paused
    for schedule in schedules:
        row = schedule_row(schedule, names.get(schedule.dag_id, schedule.dag_id))
        if row is not None:
            rows.append(row)
    return rows


# -- filters and sorting ----------------------------------------------------------------------------
SORT_KEYS: tuple[str, ...] = (
    "integration", "run_name", "reference_id", "triggered_by", "start", "end", "duration_seconds",
    "status", "records_processed", "records_created", "errors", "people_processed",
)  # fmt: skip


class ActivityFilter(BaseModel):
    """What the person asked for: integrations (DAG ids), statuses, a date range, a sort."""

    integrations: list[str] = Field(default_factory=list)
    statuses: list[str] = Field(default_factory=list)
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    sort: str = "start"
    order: Literal["asc", "desc"] = "desc"

    @field_validator("statuses")
    @classmethod
    def _known_statuses(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in STATUSES]
        if unknown:
            raise ValueError(f"unknown status {unknown[0]!r}; one of: {', '.join(STATUSES)}")
        return value

    @field_validator("sort")
    @classmethod
    def _known_sort(cls, value: str) -> str:
        if value not in SORT_KEYS:
            raise ValueError(f"cannot sort by {value!r}; one of: {', '.join(SORT_KEYS)}")
        return value

    def window(self, now: datetime) -> tuple[datetime, datetime | None]:
        """[since, until) in UTC: the chosen days, else the last seven days."""
        until = datetime.combine(self.date_to + timedelta(days=1), time.min, UTC) if self.date_to else None
        if self.date_from:
            since = datetime.combine(self.date_from, time.min, UTC)
        else:
            since = (until or now) - timedelta(days=DEFAULT_DAYS)
        return since, until

    def query_params(self) -> dict[str, str | list[str]]:
        """The filter as the page's query parameters (for links that keep it)."""
        params: dict[str, str | list[str]] = {}
        if self.integrations:
            params["integration"] = list(self.integrations)
        if self.statuses:
            params["status"] = list(self.statuses)
        if self.date_from:
            params["date_from"] = self.date_from.isoformat()
        if self.date_to:
            params["date_to"] = self.date_to.isoformat()
        params["sort"] = self.sort
        params["order"] = self.order
        return params


def apply_filter(
    rows: Iterable[ActivityRow], activity_filter: ActivityFilter, now: datetime
) -> list[ActivityRow]:
    """Rows matching the filter. Schedule rows are about the future: the date range does not apply."""
    since, until = activity_filter.window(now)
    kept: list[ActivityRow] = []
    for row in rows:
        if activity_filter.integrations and row.dag_id not in activity_filter.integrations:
            continue
        if activity_filter.statuses and row.status not in activity_filter.statuses:
            continue
        if row.kind == "run":
            when = row.start or row.queued
            if when is None or when < since or (until is not None and when >= until):
                continue
        kept.append(row)
    return kept


def _sort_value(row: ActivityRow, key: str) -> Any:
    value = getattr(row, key)
    if key == "start" and value is None:
        value = row.queued  # a queued run sorts by when it was queued
    return value.casefold() if isinstance(value, str) else value


def sort_rows(rows: Iterable[ActivityRow], key: str = "start", order: str = "desc") -> list[ActivityRow]:
    """Sorted by ``key``; rows without a value for it (a deleted schedule has no next run) come last."""
    if key not in SORT_KEYS:
        raise ValueError(f"cannot sort by {key!r}")
    rows = list(rows)
    valued = [r for r in rows if _sort_value(r, key) is not None]
    empty = [r for r in rows if _sort_value(r, key) is None]
    valued.sort(key=lambda row: _sort_value(row, key), reverse=order == "desc")
    return valued + empty


class ErrorCounter(BaseModel):
    """Runs that ended with errors since the person last looked at the page."""

    since: datetime
    runs: int
    records: int
    integrations: list[str] = Field(default_factory=list)


def errors_since(rows: Iterable[ActivityRow], since: datetime) -> ErrorCounter:
    runs = 0
    records = 0
    integrations: list[str] = []
    for row in rows:
        if row.kind != "run" or row.status not in ERROR_STATUSES or row.end is None or row.end < since:
            continue
        runs += 1
        records += row.errors or 0
        if row.integration not in integrations:
            integrations.append(row.integration)
    return ErrorCounter(since=since, runs=runs, records=records, integrations=integrations)


# -- how values read --------------------------------------------------------------------------------
def format_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def shown_text(value: object) -> str:
    """Free text from a summary (a warning, a failure reason) as it may appear: never an SSN."""
    return mask_field("message", value)


# -- CSV export -------------------------------------------------------------------------------------
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Integration", "integration"),
    ("Run name", "run_name"),
    ("Reference ID", "reference_id"),
    ("Triggered by", "triggered_by"),
    ("Start (UTC) / next run", "start"),
    ("End (UTC)", "end"),
    ("Duration", "duration_seconds"),
    ("Status", "status"),
    ("Records processed", "records_processed"),
    ("Records created", "records_created"),
    ("Errors", "errors"),
    ("Employees / participants processed", "people_processed"),
)


def _csv_value(row: ActivityRow, attribute: str) -> str:
    value = getattr(row, attribute)
    if attribute == "duration_seconds":
        return format_duration(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def csv_lines(rows: Iterable[ActivityRow]) -> Iterator[str]:
    """The rows as CSV, one line at a time. A name a person typed cannot run as a spreadsheet formula."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow([title for title, _ in CSV_COLUMNS])
    yield flush()
    for row in rows:
        writer.writerow([_csv_value(row, attribute) for _, attribute in CSV_COLUMNS])
        yield flush()
