"""The Activity Monitor's HTML: plain server-rendered pages (a little vanilla JS for the one action).

Pure functions of the rows and details; every value is escaped, and free text from a summary passes
through :func:`~benefits_hub.ui.activity.shown_text` (no SSN ever reaches the page). ``root`` is the
api-server's root path (``[api] base_url``'s path, usually empty); every link is built from
:mod:`benefits_hub.ui.urls`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from benefits_hub.deductions.resubmit import RESUBMIT_DAG_ID
from benefits_hub.ui import urls
from benefits_hub.ui.activity import (
    SCHEDULED,
    SCHEDULED_BUT_DELETED,
    STATUSES,
    ActivityFilter,
    ActivityRow,
    ErrorCounter,
    format_duration,
    shown_text,
)
from benefits_hub.ui.detail import RunDetail, field_label, summary_items

STYLE = """
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#f9fafb; --accent:#0f62fe; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink);
  background:var(--bg); }
main { padding:18px 16px 40px; }
h1 { font-size:22px; margin:0 0 4px; }
h2 { font-size:16px; margin:28px 0 10px; }
a { color:var(--accent); text-decoration:none; }
a:hover { text-decoration:underline; }
.subtitle { color:var(--muted); margin:0 0 16px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
.counter { margin:0 0 14px; padding:10px 14px; border-radius:8px; font-weight:500; }
.counter.has-errors { background:#fef2f2; border:1px solid #fecaca; color:#991b1b; }
.counter.no-errors { background:#f0fdf4; border:1px solid #bbf7d0; color:#166534; }
form.filters { display:flex; flex-wrap:wrap; gap:12px; align-items:flex-end; margin-bottom:14px; }
form.filters label { display:flex; flex-direction:column; gap:3px; font-size:12px; color:var(--muted); }
select, input[type=date], textarea { font:inherit; padding:5px 8px; border:1px solid #d1d5db;
  border-radius:6px; background:#fff; color:var(--ink); }
button, .button { font:inherit; padding:6px 14px; border-radius:6px; border:1px solid var(--accent);
  background:var(--accent); color:#fff; cursor:pointer; display:inline-block; }
.button.secondary { background:#fff; color:var(--accent); }
table { border-collapse:collapse; width:100%; background:#fff; }
table.runs { border:1px solid var(--line); }
.scroll { overflow-x:auto; border-radius:8px; }
th, td { padding:6px 8px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th { background:#f3f4f6; font-size:11px; text-transform:uppercase; letter-spacing:.03em; color:#374151; }
th a { color:inherit; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
td.when { white-space:nowrap; }
td.name { min-width:170px; }
td.integration { max-width:170px; overflow-wrap:anywhere; }
td.ref { max-width:120px; font-size:11px; }
table#activity { font-size:13px; }
.ref { font-family:ui-monospace,Menlo,Consolas,monospace; font-size:12px; color:var(--muted);
  word-break:break-all; }
.dag-id { display:block; font-size:11px; color:var(--muted); word-break:break-all; }
tr.row-schedule td { background:#f8fafc; }
tr.row-deleted td { color:#9ca3af; background:#f3f4f6; }
tr.row-deleted .dag-id { text-decoration:line-through; }
.badge { display:inline-block; padding:2px 9px; border-radius:999px; font-size:12px; font-weight:600;
  white-space:nowrap; }
.status-in-progress { background:#dbeafe; color:#1e40af; }
.status-completed, .status-successful { background:#dcfce7; color:#166534; }
.status-successful-with-warnings { background:#fef3c7; color:#92400e; }
.status-completed-with-errors { background:#ffedd5; color:#9a3412; }
.status-failed { background:#fee2e2; color:#991b1b; }
.status-scheduled { background:#e0e7ff; color:#3730a3; }
.status-scheduled-but-deleted { background:#e5e7eb; color:#6b7280; }
.errors-positive { color:#b91c1c; font-weight:600; }
.tag { font-size:11px; color:var(--muted); border:1px solid var(--line); border-radius:4px; padding:0 4px;
  margin-left:4px; }
.tag.waiting-approval { color:#9a3412; border-color:#fdba74; background:#fff7ed; font-weight:600; }
.footer { color:var(--muted); font-size:12px; margin-top:10px; }
dl.meta { display:grid; grid-template-columns:max-content 1fr; gap:4px 18px; margin:0; }
dl.meta dt { color:var(--muted); }
dl.meta dd { margin:0; }
.reason { background:#fef2f2; border:1px solid #fecaca; color:#7f1d1d; border-radius:8px; padding:10px 14px; }
ul.warnings { margin:0; padding-left:20px; }
ul.warnings li { margin:3px 0; color:#92400e; }
table.summary th { width:240px; text-transform:none; letter-spacing:0; font-size:13px; background:#f9fafb; }
table.nested th { text-transform:none; font-size:12px; }
textarea { width:100%; min-height:90px; font-family:ui-monospace,Menlo,Consolas,monospace; font-size:12px; }
.all-corrected { color:#166534; font-weight:500; }
p.actions { display:flex; flex-wrap:wrap; gap:8px; margin:6px 0 12px; }
.run-an-integration { margin:0 0 14px; }
.run-an-integration summary { cursor:pointer; font-weight:600; color:var(--accent); }
.muted { color:var(--muted); }
@media (max-width: 1200px) {
  table#activity { font-size:12px; }
  table#activity th, table#activity td { padding:5px 5px; }
  table#activity .dag-id, table#activity td.ref, table#activity th:nth-child(3) { display:none; }
  td.name { min-width:120px; }
}
"""


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def status_class(status: str) -> str:
    """The badge's CSS class: only for a status of the hub's vocabulary (a value from a summary that
    anyone with XCom access could edit never reaches an attribute as it is)."""
    if status not in STATUSES:
        return "status-unknown"
    return "status-" + "-".join(status.lower().replace("-", " ").split())


def status_badge(status: str) -> str:
    return f'<span class="badge {status_class(status)}">{esc(status)}</span>'


def page(
    title: str,
    body: str,
    *,
    root: str = "",
    extra_style: str = "",
    refresh_seconds: int = 0,
    refresh_url: str = "",
) -> str:
    # A page about a run still in progress reloads itself (no script needed, inside Airflow's frame too).
    refresh = ""
    if refresh_seconds:
        target = f";url={esc(refresh_url)}" if refresh_url else ""
        refresh = f'<meta http-equiv="refresh" content="{refresh_seconds}{target}">'
    # The one script: times in the viewer's own time zone. A file of this app (the CSP allows no inline
    # script); without it the pages read the same, in UTC.
    local_time = f'<script src="{esc(root + urls.LOCAL_TIME_SCRIPT)}" defer></script>'
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh}<title>{esc(title)}</title><style>{STYLE}{extra_style}</style>{local_time}</head>"
        f"<body><main>{body}</main></body></html>"
    )


def time_html(value: datetime | str | None) -> str:
    """A moment, to the second: UTC in the page, the viewer's time zone once the script ran."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return esc(value)
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    utc = value.astimezone(UTC)
    return f'<time datetime="{esc(utc.isoformat())}">{utc:%Y-%m-%d %H:%M:%S} UTC</time>'


# -- the list ---------------------------------------------------------------------------------------
COLUMNS: tuple[tuple[str, str], ...] = (
    ("integration", "Integration"),
    ("run_name", "Run name"),
    ("reference_id", "Reference ID"),
    ("triggered_by", "Triggered by"),
    ("start", "Start / next run"),
    ("end", "End"),
    ("duration_seconds", "Duration"),
    ("status", "Status"),
    ("records_processed", "Processed"),
    ("records_created", "Created"),
    ("errors", "Errors"),
    ("people_processed", "Employees / participants"),
)


def _number(value: int | None, *, errors: bool = False, link: str = "") -> str:
    if value is None:
        return '<td class="num"></td>'
    css = ' class="num errors-positive"' if errors and value > 0 else ' class="num"'
    if link and value > 0:
        # An error count opens the run's error records on a page of their own.
        return f'<td{css}><a class="error-count" href="{esc(link)}">{value:,}</a></td>'
    return f"<td{css}>{value:,}</td>"


DRY_RUN_TAG = (
    ' <span class="tag dry-run" title="Nothing was sent: the run\'s page shows the preview">dry run</span>'
)


def _run_cells(row: ActivityRow, root: str) -> str:
    link = f'<a href="{esc(root + row.detail_path)}">{esc(row.run_name)}</a>' if row.detail_path else ""
    start = time_html(row.start) or f'<span class="muted">queued {time_html(row.queued)}</span>'
    if row.paused:
        start += (
            '<span class="tag waiting-paused" title="Turn it on with the pause toggle next to its name on '
            "Airflow's Dags page\">waiting: integration paused</span>"
        )
    if row.approval_path:
        start += (
            f'<a class="tag waiting-approval" href="{esc(root + row.approval_path)}" title="A person must '
            'approve or reject it in Required Actions">Waiting for approval</a>'
        )
    return (
        f'<td class="name">{link}</td>'
        f'<td class="ref">{esc(row.reference_id)}</td>'
        f"<td>{esc(row.triggered_by)}</td>"
        f'<td class="when">{start}</td>'
        f'<td class="when">{time_html(row.end)}</td>'
        f'<td class="when">{esc(format_duration(row.duration_seconds))}</td>'
        f"<td>{status_badge(row.status)}{DRY_RUN_TAG if row.dry_run else ''}</td>"
        + _number(row.records_processed)
        + _number(row.records_created)
        + _number(
            row.errors, errors=True, link=root + urls.error_records_path(row.dag_id, row.reference_id or "")
        )
        + _number(row.people_processed)
    )


def _schedule_cells(row: ActivityRow) -> str:
    if row.deleted:
        what = f"Was scheduled ({esc(row.schedule)}); its DAG file is gone, so it will not run"
        when = '<span class="muted">never</span>'
    else:
        what = f'Next scheduled run<span class="dag-id">schedule: {esc(row.schedule)}</span>'
        when = time_html(row.start)
        if row.paused:
            # A paused DAG runs only once someone turns it on again: its due time may be long past.
            when = f'<span class="tag">paused</span> <span class="muted">due {when}</span>'
    return (
        f'<td class="name">{what}</td><td></td><td>scheduler</td>'
        f"<td>{when}</td><td></td><td></td>"
        f"<td>{status_badge(row.status)}</td><td></td><td></td><td></td><td></td>"
    )


def row_html(row: ActivityRow, root: str) -> str:
    css = ["row-run" if row.kind == "run" else "row-schedule"]
    if row.deleted:
        css.append("row-deleted")
    integration = f'{esc(row.integration)}<span class="dag-id">{esc(row.dag_id)}</span>'
    cells = _run_cells(row, root) if row.kind == "run" else _schedule_cells(row)
    return (
        f'<tr class="{" ".join(css)}" data-kind="{esc(row.kind)}" data-dag-id="{esc(row.dag_id)}" '
        f'data-status="{esc(row.status)}"><td class="integration">{integration}</td>{cells}</tr>'
    )


def _list_link(root: str, params: dict[str, Any]) -> str:
    return root + urls.list_path(**params)


def _header(key: str, title: str, activity_filter: ActivityFilter, root: str, seen: str) -> str:
    active = activity_filter.sort == key
    order = "asc" if active and activity_filter.order == "desc" else "desc"
    params = {**activity_filter.query_params(), "sort": key, "order": order, "seen": seen}
    arrow = (" ▼" if activity_filter.order == "desc" else " ▲") if active else ""
    direction = "descending" if activity_filter.order == "desc" else "ascending"
    aria = f' aria-sort="{direction}"' if active else ""
    return f'<th{aria}><a href="{esc(_list_link(root, params))}">{esc(title)}{arrow}</a></th>'


def counter_html(counter: ErrorCounter) -> str:
    since = time_html(counter.since)
    if not counter.runs:
        return (
            f'<div id="error-counter" class="counter no-errors" data-count="0">'
            f"No run ended with errors since you last looked ({since}).</div>"
        )
    runs = "run" if counter.runs == 1 else "runs"
    names = ", ".join(esc(name) for name in counter.integrations)
    return (
        f'<div id="error-counter" class="counter has-errors" data-count="{counter.runs}">'
        f"{counter.runs} {runs} ended with errors since you last looked ({since}): "
        f"{counter.records:,} error records — {names}.</div>"
    )


def _options(choices: Sequence[tuple[str, str]], chosen: Sequence[str], everything: str) -> str:
    options = [f'<option value="">{esc(everything)}</option>']
    for value, label in choices:
        selected = " selected" if value in chosen else ""
        options.append(f'<option value="{esc(value)}"{selected}>{esc(label)}</option>')
    return "".join(options)


def filters_html(
    activity_filter: ActivityFilter, integrations: Sequence[tuple[str, str]], root: str, seen: str
) -> str:
    statuses = [(status, status) for status in STATUSES]
    csv_query = urlencode(activity_filter.query_params(), doseq=True)
    return (
        f'<form class="filters" method="get" action="{esc(root + urls.list_path())}">'
        f'<label>Integration<select name="integration">'
        f"{_options(integrations, activity_filter.integrations, 'All integrations')}</select></label>"
        f'<label>Status (Ctrl-click for several)<select name="status" multiple size="4">'
        f"{_options(statuses, activity_filter.statuses, 'All statuses')}</select></label>"
        f'<label>From<input type="date" name="date_from" '
        f'value="{esc(activity_filter.date_from.isoformat() if activity_filter.date_from else "")}"></label>'
        f'<label>To<input type="date" name="date_to" '
        f'value="{esc(activity_filter.date_to.isoformat() if activity_filter.date_to else "")}"></label>'
        f'<input type="hidden" name="sort" value="{esc(activity_filter.sort)}">'
        f'<input type="hidden" name="order" value="{esc(activity_filter.order)}">'
        f'<input type="hidden" name="seen" value="{esc(seen)}">'
        '<button type="submit">Apply</button>'
        f'<a class="button secondary" href="{esc(root + urls.list_path())}">Last 7 days</a>'
        f'<a class="button secondary" id="csv-export" '
        f'href="{esc(root + urls.csv_path() + "?" + csv_query)}">Download CSV</a>'
        "</form>"
    )


def list_page(
    rows: Sequence[ActivityRow],
    activity_filter: ActivityFilter,
    counter: ErrorCounter,
    integrations: Sequence[tuple[str, str]],
    *,
    root: str,
    now: datetime,
    seen: str,
    runnable: Sequence[tuple[str, str]] = (),
) -> str:
    since, until = activity_filter.window(now)
    run_links = " ".join(
        f'<a class="button secondary run-link" data-dag-id="{esc(d)}" '
        f'href="{esc(root + urls.trigger_path(d))}">{esc(n)}</a>'
        for d, n in runnable
    )
    headers = "".join(_header(key, title, activity_filter, root, seen) for key, title in COLUMNS)
    body_rows = "".join(row_html(row, root) for row in rows) or (
        f'<tr class="empty"><td colspan="{len(COLUMNS)}">No runs match these filters.</td></tr>'
    )
    runs = sum(1 for row in rows if row.kind == "run")
    until_text = time_html(until) if until else "now"
    body = (
        "<h1>Activity Monitor</h1>"
        '<p class="subtitle">Every integration run, in the vendors\' words. Open a run for its summary, '
        "files and logs. iJoin plans at a glance: "
        f'<a id="plan-summary" href="{esc(root + urls.plans_path())}">Plan Summary</a>; the codes the '
        "integrations translate: "
        f'<a id="mappings" href="{esc(root + urls.mappings_path())}">Mappings</a>.</p>'
        + counter_html(counter)
        + (
            f'<details class="card run-an-integration" id="run-an-integration"><summary>Run an Integration'
            f'</summary><p class="actions">{run_links}</p></details>'
            if run_links
            else ""
        )
        + filters_html(activity_filter, integrations, root, seen)
        + f'<div class="scroll"><table class="runs" id="activity"><thead><tr>{headers}</tr></thead>'
        f"<tbody>{body_rows}</tbody></table></div>"
        f'<p class="footer" id="row-count">{runs} run(s) from {time_html(since)} to '
        f"{until_text}, plus the scheduled integrations ({SCHEDULED} / {SCHEDULED_BUT_DELETED}). "
        "Times are in your time zone.</p>"
    )
    # While a run is in progress the list reloads itself, keeping this visit's error-counter baseline.
    busy = any(row.kind == "run" and row.status == "In-Progress" for row in rows)
    params = {**activity_filter.query_params(), "seen": seen}
    return page(
        "Activity Monitor", body, root=root, refresh_seconds=15 if busy else 0,
        refresh_url=_list_link(root, params),
    )  # fmt: skip


# -- one run ----------------------------------------------------------------------------------------
# Summary fields that name another run: shown as a link to that run's page (a Plan Sync's per-plan
# review, a review's Plan Sync).
RUN_LINK_FIELDS = {
    "review_run_id": "ijoin_plan_draft_review",
    "plan_sync_run": "ijoin_plan_sync",
    "plan_repair_run": "ijoin_plan_repair",
}


def _run_link(key: str, value: Any, root: str) -> str | None:
    if key not in RUN_LINK_FIELDS or not isinstance(value, str) or not value:
        return None
    href = esc(root + urls.run_detail_path(RUN_LINK_FIELDS[key], value))
    return f'<a class="run-link-{esc(key)}" href="{href}">{esc(value)}</a>'


def _value_html(key: str, value: Any, detail: RunDetail, root: str) -> str:
    if (link := _run_link(key, value, root)) is not None:
        return link
    if key in ("source_files", "output_file", "error_files"):
        kind = {"source_files": "source", "output_file": "output", "error_files": "errors"}[key]
        # A set's members' error files follow its own in the file list: this field lists its own.
        own = len(value or []) if isinstance(value, list) else int(bool(value))
        links = [
            f'<a href="{esc(root + f.download_path)}">{esc(f.name)}</a>'
            for f in detail.files
            if f.kind == kind and f.index < own
        ]
        return ", ".join(links) or '<span class="muted">none</span>'
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return _nested_table(value, root)
    if isinstance(value, list):
        items = "".join(f"<li>{esc(shown_text(v))}</li>" for v in value)
        return f'<ul class="warnings">{items}</ul>' if items else '<span class="muted">none</span>'
    if isinstance(value, dict):
        return _nested_table([value], root)
    if value is None or value == "":
        return '<span class="muted">—</span>'
    if key == "status":
        return status_badge(str(value))
    if key in ("start_date", "end_date") and isinstance(value, str):
        return time_html(value)
    return esc(shown_text(value))


def _nested_table(items: list[dict[str, Any]], root: str = "") -> str:
    keys: list[str] = []
    for item in items:
        keys.extend(k for k in item if k not in keys)
    head = "".join(f"<th>{esc(field_label(k))}</th>" for k in keys)
    rows = []
    for item in items:
        cells = []
        for key in keys:
            value = item.get(key)
            if (link := _run_link(key, value, root)) is not None:
                cells.append(f"<td>{link}</td>")
                continue
            if isinstance(value, list):
                value = "; ".join(shown_text(v) for v in value)
            cells.append(f"<td>{esc(shown_text(value)) if value not in (None, '') else ''}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="nested"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _files_html(detail: RunDetail, root: str) -> str:
    if not detail.files:
        return '<p class="muted">This run lists no files.</p>'
    titles = {"source": "Source", "output": "Output", "errors": "Error file"}
    items = "".join(
        f'<li><span class="muted">{titles[f.kind]}:</span> '
        f'<a class="file-link" data-kind="{esc(f.kind)}" href="{esc(root + f.download_path)}">'
        f"{esc(f.name)}</a>"
        "</li>"
        for f in detail.files
    )
    return f'<ul id="files">{items}</ul><p class="muted">Files download with SSNs and birth dates masked.</p>'


def _tasks_html(detail: RunDetail, root: str) -> str:
    if not detail.tasks:
        return '<p class="muted">No task has run yet.</p>'
    rows = "".join(
        "<tr>"
        f"<td>{esc(t.task_id)}{f' [{esc(t.label or t.map_index)}]' if t.map_index >= 0 else ''}</td>"
        f'<td>{esc(t.state or "not started")}</td><td class="num">{t.try_number}</td>'
        # No target: Airflow's frame allows no top-level navigation, so the link opens the task's page
        # (its log) where this page is: inside the frame, or on its own.
        f'<td><a class="log-link" href="{esc(root + t.log_path)}">'
        "Open the log in Airflow</a></td>"
        "</tr>"
        for t in detail.tasks
    )
    return (
        '<table class="runs" id="task-logs"><thead><tr><th>Task</th><th>State</th><th>Tries</th>'
        f"<th>Log</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _assistant_html(detail: RunDetail, root: str) -> str:
    offer = detail.resubmit
    if offer is None:
        return ""
    link = (
        f'<a class="button" id="go-to-assistant" href="{esc(root + offer.page_path)}">'
        "Go to Transaction Assistant</a>"
    )
    if offer.open_records == 0 and offer.total_records:
        resubmissions = "".join(
            f'<li><a class="resubmission" href="{esc(root + urls.run_detail_path(RESUBMIT_DAG_ID, r))}">'
            f"{esc(r)}</a></li>"
            for r in offer.resubmissions
        )
        state = (
            f'<p id="assistant-state" class="all-corrected">All {offer.total_records} error records '
            f"corrected.</p>" + (f'<ul id="resubmissions">{resubmissions}</ul>' if resubmissions else "")
        )
    elif offer.open_records is not None and offer.total_records is not None:
        state = (
            f'<p id="assistant-state">{offer.open_records} of {offer.total_records} error records still '
            "open. Correct them, or dismiss those not needed, and resubmit.</p>"
        )
    else:
        state = '<p id="assistant-state">This run has error records to correct and resubmit.</p>'
    card = f'<div class="card" id="transaction-assistant">{state}<p>{link}</p></div>'
    return "<h2>Transaction Assistant</h2>" + card


def _params_html(detail: RunDetail) -> str:
    if not detail.params:
        return ""
    empty = '<span class="muted">empty</span>'
    rows = "".join(
        f'<tr data-param="{esc(p.name)}"><th>{esc(p.title)}</th>'
        f"<td>{esc(p.value) if p.value else empty}</td></tr>"
        for p in detail.params
    )
    return f'<h2>Parameters</h2><table class="runs summary" id="params">{rows}</table>'


def _actions_html(detail: RunDetail, root: str) -> str:
    links = []
    if detail.rerun_path and detail.row.status != "In-Progress":
        links.append(f'<a class="button" id="rerun" href="{esc(root + detail.rerun_path)}">Re-Run</a>')
    if detail.trigger_path:
        links.append(
            f'<a class="button secondary" id="run-integration" href="{esc(root + detail.trigger_path)}">'
            "Run this integration</a>"
        )
    # The on-call runbook is the DAG's docs, on its page in Airflow ("Docs").
    links.append(
        f'<a class="button secondary" id="runbook" href="{esc(root + urls.airflow_dag_path(detail.dag_id))}">'
        "Runbook (Airflow: Docs)</a>"
    )
    return f'<p class="actions">{" ".join(links)}</p>' if links else ""


def error_records_page(
    detail: RunDetail,
    rows: Sequence[dict[str, str]],
    *,
    root: str,
    query: str,
    field: str,
    fields: Sequence[str],
    total: int,
    shown_limit: int,
) -> str:
    """A run's error records, as its error files hold them (values already masked), filterable."""
    row = detail.row
    path = root + urls.error_records_path(detail.dag_id, detail.run_id)
    options = "".join(
        f'<option value="{esc(f)}"{" selected" if f == field else ""}>{esc(f)}</option>' for f in fields
    )
    form = (
        f'<form class="filters" method="get" action="{esc(path)}">'
        f'<label>Search<input type="text" name="q" value="{esc(query)}" '
        'placeholder="employee, code, reason"></label>'
        f'<label>Field<select name="field"><option value="">All fields</option>{options}</select></label>'
        '<button type="submit">Filter</button></form>'
    )
    body_rows, head, more = _rows_table(
        rows, ERROR_COLUMNS, ERROR_TITLES, shown_limit, "No error record matches.", "the error file"
    )
    parts = [
        f'<p><a href="{esc(root + urls.run_detail_path(detail.dag_id, detail.run_id))}">'
        f"← {esc(row.run_name)}</a></p>",
        f"<h1>Error records {status_badge(row.status)}</h1>",
        f'<p class="subtitle" id="error-count">{len(rows):,} of {total:,} error rows{more}.</p>',
        form,
        f'<div class="scroll"><table class="runs" id="error-records"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body_rows}</tbody></table></div>",
    ]
    return page(f"Error records — {row.run_name}", "".join(parts), root=root)


def _would_counts(summary: dict[str, Any] | None) -> list[tuple[str, int]]:
    """A Dry Run's counts, in words: ("would be created", 3)..."""
    summary = summary or {}  # the Run Summary as XCom holds it: its counters at the top level
    counts = [(words, int(summary[key])) for key, words in PREVIEW_COUNTS if summary.get(key)]
    if summary.get("would_terminate") or summary.get("would_rehire"):  # the export counts them as updates
        counts = [(w + " (terminations and rehires among them)" if w == UPDATED else w, n) for w, n in counts]
    return counts


UPDATED = "would be updated"


PREVIEW_COUNTS = (
    ("would_create", "would be created"),
    ("would_update", UPDATED),
    ("would_terminate", "would be terminated"),
    ("would_rehire", "would be rehired"),
    ("census_rows_not_uploaded", "census rows would be uploaded"),
    ("would_leave_unchanged", "already loaded, would be left unchanged"),
    ("would_sync_plans", "plans would be synced"),
    ("would_leave_drafts", "fund line-up changes would wait as drafts for a plan administrator's review"),
    ("would_send_participants", "participants would be sent to iJoin"),
    ("would_apply", "elections would be applied to the recordkeeper"),
    ("would_only_mark_sent", "elections applied before would only be marked sent in iJoin"),
)


def _dry_run_html(detail: RunDetail, root: str) -> str:
    counts = _would_counts(detail.summary)
    said = ", ".join(f"{n:,} {words}" for words, n in counts) or "nothing would change"
    link = root + urls.preview_path(detail.dag_id, detail.run_id)
    return (
        '<div class="card dry-run" id="dry-run"><b>Dry run: nothing was sent.</b> '
        f"A real run with the same params would send this: {esc(said)}. "
        f'<a id="preview-link" href="{esc(link)}">See each employee in the preview</a></div>'
    )


def _rows_table(
    rows: Sequence[dict[str, str]],
    columns: Sequence[str],
    titles: Sequence[str],
    shown_limit: int,
    none: str,
    file_words: str,
) -> tuple[str, str, str]:
    """A staged CSV's rows as table body and head (escaped, at most ``shown_limit``), and the note that
    says when more are in the file."""
    body = (
        "".join(
            "<tr>" + "".join(f"<td>{esc(shown_text(r.get(c, '')))}</td>" for c in columns) + "</tr>"
            for r in rows[:shown_limit]
        )
        or f'<tr><td colspan="{len(columns)}">{esc(none)}</td></tr>'
    )
    head = "".join(f"<th>{esc(title)}</th>" for title in titles)
    more = (
        f" (the first {shown_limit:,} shown; download {file_words} for all)"
        if len(rows) > shown_limit
        else ""
    )
    return body, head, more


def preview_page(
    detail: RunDetail, rows: Sequence[dict[str, str]], *, root: str, query: str, total: int, shown_limit: int
) -> str:
    """A Dry Run's preview: each record a real run would send, with the fields and new values (masked)."""
    row = detail.row
    path = root + urls.preview_path(detail.dag_id, detail.run_id)
    columns = list(rows[0]) if rows else ["Record", "Action", "Fields and new values"]
    form = (
        f'<form class="filters" method="get" action="{esc(path)}">'
        f'<label>Search<input type="text" name="q" value="{esc(query)}" '
        'placeholder="employee, action, field"></label><button type="submit">Filter</button></form>'
    )
    body_rows, head, more = _rows_table(
        rows, columns, columns, shown_limit, "No record matches.", "the preview file"
    )
    counts = "".join(f"<li>{n:,} {esc(words)}</li>" for words, n in _would_counts(detail.summary))
    parts = [
        f'<p><a href="{esc(root + urls.run_detail_path(detail.dag_id, detail.run_id))}">'
        f"← {esc(row.run_name)}</a></p>",
        f"<h1>Dry run preview {status_badge(row.status)}</h1>",
        "<p>Nothing was sent. This is what a real run with the same params would have sent; the data "
        "may have changed since. SSNs and birth dates are masked.</p>",
        f'<ul class="counts" id="preview-counts">{counts}</ul>' if counts else "",
        f'<p class="subtitle" id="preview-count">{len(rows):,} of {total:,} records{more}.</p>',
        form,
        f'<div class="scroll"><table class="runs" id="preview"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body_rows}</tbody></table></div>",
    ]
    return page(f"Dry run preview — {row.run_name}", "".join(parts), root=root)


ERROR_COLUMNS = ("record_key", "field", "value", "rule", "reason")
ERROR_TITLES = ("Record", "Field", "Value (masked)", "Rule", "What to do")


def detail_page(detail: RunDetail, *, root: str) -> str:
    row = detail.row
    meta = [
        ("Integration", f'{esc(row.integration)} <span class="muted">({esc(row.dag_id)})</span>'),
        ("Reference ID", f'<span class="ref">{esc(row.reference_id)}</span>'),
        ("Triggered by", esc(row.triggered_by)),
        ("Start", time_html(row.start) or '<span class="muted">queued</span>'),
        ("End", time_html(row.end) or '<span class="muted">—</span>'),
        ("Duration", esc(format_duration(row.duration_seconds)) or '<span class="muted">—</span>'),
        ("Type", esc(row.integration_type or "—")),
    ]
    meta_html = "".join(f"<dt>{title}</dt><dd>{value}</dd>" for title, value in meta)
    parts = [
        f'<p><a href="{esc(root + urls.list_path())}">← Activity Monitor</a></p>',
        f'<h1 id="run-name">{esc(row.run_name)} {status_badge(row.status)}</h1>',
        _actions_html(detail, root),
        f'<div class="card"><dl class="meta">{meta_html}</dl></div>',
    ]
    if detail.waiting_on_pause:
        parts.append(
            '<div class="reason" id="paused-warning">This run is waiting because the integration is '
            "<b>paused</b>. Turn it on with the pause toggle next to its name on Airflow's Dags page (or "
            "at the top of its own page); the run then starts.</div>"
        )
    if row.approval_path:
        parts.append(
            '<div class="reason" id="waiting-approval">This run is <b>waiting for approval</b>: '
            f"{esc(detail.waiting_reason or 'a person must answer it before it goes on.')} "
            f'<a id="approval-link" href="{esc(root + row.approval_path)}">Approve or reject it in '
            "Required Actions</a>.</div>"
        )
    if row.dry_run:
        parts.append(_dry_run_html(detail, root))
    found = (detail.summary or {}).get("discrepancies")
    if found:  # a reconciliation's findings: listed, filterable and repairable on a page of their own
        link = root + urls.discrepancies_path(detail.dag_id, detail.run_id)
        parts.append(
            f'<div class="card" id="discrepancies-found"><b>Discrepancies found: {int(found):,}.</b> '
            f'<a id="discrepancies-link" href="{esc(link)}">See them, and repair those an integration can '
            "repair</a></div>"
        )
    if detail.failure_reason:
        parts.append(f'<h2>Why it failed</h2><div class="reason">{esc(detail.failure_reason)}</div>')
    if detail.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in detail.warnings)
        parts.append(f'<h2>Warnings</h2><ul class="warnings" id="warnings">{items}</ul>')
    parts.append("<h2>Files</h2>" + _files_html(detail, root))
    parts.append(_assistant_html(detail, root))
    parts.append(_params_html(detail))
    parts.append("<h2>Task logs</h2>" + _tasks_html(detail, root))
    if detail.summary:
        rows = "".join(
            f'<tr data-field="{esc(key)}"><th>{esc(field_label(key))}</th>'
            f"<td>{_value_html(key, value, detail, root)}</td></tr>"
            for key, value in summary_items(detail.summary)
        )
        parts.append(f'<h2>Run Summary</h2><table class="runs summary" id="summary">{rows}</table>')
    else:
        status = row.status
        why = "it has not finished yet" if status == "In-Progress" else "it stopped before its summary step"
        parts.append(f'<h2>Run Summary</h2><p class="muted">No Run Summary: {why}.</p>')
    refresh = 5 if row.status == "In-Progress" else 0
    return page(f"{row.run_name} — Activity Monitor", "".join(parts), root=root, refresh_seconds=refresh)


def message_page(title: str, message: str, *, root: str) -> str:
    body = (
        f'<p><a href="{esc(root + urls.list_path())}">← Activity Monitor</a></p>'
        f"<h1>{esc(title)}</h1><p>{esc(message)}</p>"
    )
    return page(title, body, root=root)
