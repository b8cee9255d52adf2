"""The Plan Summary pages: every iJoin plan with its last syncs, a waiting draft and **Sync now**; one
plan's participants with their synchronization status. Escaped through :func:`render.esc` like every
other page; the buttons are plain forms (no script)."""

from __future__ import annotations

from collections.abc import Sequence

from benefits_hub.ui import urls
from benefits_hub.ui.plans import REVIEW_DAG_ID, ParticipantRow, PlanRow, PlanSyncFacts
from benefits_hub.ui.render import esc, page, status_badge, time_html

PLAN_STYLE = """
table.plans td form { display:inline; margin:0 4px 4px 0; }
table.plans td .reason-text { font-size:12px; color:var(--muted); max-width:360px; }
.draft-waiting { background:#fef3c7; color:#92400e; border-radius:6px; padding:2px 8px; font-size:12px;
  font-weight:600; }
.syncing { color:#1e40af; font-size:12px; font-weight:600; }
"""
NAV_TITLE = "Plan Summary"


def _sync_cell(facts: PlanSyncFacts | None, root: str) -> str:
    if facts is None:
        return '<span class="muted">never synced</span>'
    link = esc(root + urls.run_detail_path(facts.dag_id, facts.run_id))
    reason = f'<div class="reason-text">{esc(facts.reason)}</div>' if facts.reason else ""
    return f'<a class="sync-run" href="{link}">{time_html(facts.at)}</a> {status_badge(facts.status)}{reason}'


def _sync_buttons(row: PlanRow, root: str, may_sync: bool) -> str:
    if not may_sync:
        return '<span class="muted">You may view only.</span>'
    action = esc(root + urls.plan_sync_path(row.plan_id))
    return "".join(
        f'<form method="post" action="{action}"><input type="hidden" name="kind" value="{kind}">'
        f'<button type="submit" class="secondary sync-now" data-kind="{kind}">{esc(label)}</button></form>'
        for kind, label in (("plan", "Sync plan now"), ("participants", "Sync participants now"))
    )


def _status_cells(row: PlanRow, root: str, may_sync: bool) -> str:
    """Last syncs, the draft and the buttons: the part of a plan's row its own page shows too."""
    draft = ""
    if row.review_run_id:
        review = esc(root + urls.run_detail_path(REVIEW_DAG_ID, row.review_run_id))
        draft = f'<a class="draft-waiting" href="{review}">Draft waiting for approval</a>'
    elif row.has_draft and row.ijoin_status == "setup":
        draft = '<span class="muted">Being set up in iJoin (not active yet)</span>'
    elif row.has_draft:
        draft = '<span class="draft-waiting">Draft in iJoin (no review waiting)</span>'
    syncing = ""
    if row.held_path:  # a person must answer: the page says where, not "in progress"
        syncing = (
            f'<div class="syncing"><a class="sync-held" href="{esc(root + row.held_path)}">Held for '
            "approval: the change is larger than the sync's thresholds allow. Approve or reject it in "
            "Required Actions.</a></div>"
        )
    elif row.in_progress:
        syncing = '<div class="syncing">Sync in progress; this page reloads until it ends.</div>'

    return (
        f'<td class="last-plan-sync">{_sync_cell(row.plan_sync, root)}</td>'
        f'<td class="last-participant-sync">{_sync_cell(row.participant_sync, root)}</td>'
        f"<td>{draft}</td>"
        f"<td>{_sync_buttons(row, root, may_sync)}{syncing}</td>"
    )


def _row_html(row: PlanRow, root: str, may_sync: bool) -> str:
    plan_link = esc(root + urls.plan_path(row.plan_id))
    return (
        f'<tr class="plan" data-plan-id="{esc(row.plan_id)}">'
        f'<td><a class="plan-link" href="{plan_link}">{esc(row.plan_id)}</a></td>'
        f'<td>{esc(row.plan_name)}<div class="muted">{esc(row.ijoin_status)}</div></td>'
        f"{_status_cells(row, root, may_sync)}</tr>"
    )


def plans_page(rows: Sequence[PlanRow], *, root: str, may_sync: bool, problem: str = "") -> str:
    body_rows = "".join(_row_html(row, root, may_sync) for row in rows) or (
        '<tr class="empty"><td colspan="6">iJoin lists no plans yet: run the iJoin Plan Sync.</td></tr>'
    )
    notice = f'<p class="reason">{esc(problem)}</p>' if problem else ""
    body = (
        f'<p><a href="{esc(root + urls.list_path())}">← Activity Monitor</a></p>'
        f"<h1>{NAV_TITLE}</h1>"
        '<p class="subtitle">Each iJoin plan, what the hub last sent it and whether a fund line-up change '
        "waits for approval. <b>Sync now</b> runs that sync for this plan only.</p>"
        + notice
        + '<div class="scroll"><table class="runs plans" id="plans"><thead><tr><th>Plan</th><th>Name</th>'
        "<th>Last Plan Sync</th><th>Last Participant Sync</th><th>Draft</th><th>Sync now</th></tr></thead>"
        f"<tbody>{body_rows}</tbody></table></div>"
        '<p class="footer">Times are in your time zone. A status here is the plan\'s own in that run.</p>'
    )
    busy = any(row.in_progress for row in rows)
    return page(
        NAV_TITLE, body, root=root, extra_style=PLAN_STYLE, refresh_seconds=10 if busy else 0,
        refresh_url=root + urls.plans_path(),
    )  # fmt: skip


def _participant_html(p: ParticipantRow) -> str:
    reasons = "<br>".join(esc(r) for r in p.reasons)
    return (
        f'<tr class="participant" data-participant-id="{esc(p.participant_id)}">'
        f"<td>{esc(p.participant_id)}</td><td>{esc(p.name)}</td><td>{esc(p.status)}</td>"
        f"<td>{reasons}</td><td>{time_html(p.updated_at or None)}</td></tr>"
    )


def plan_page(
    row: PlanRow, participants: Sequence[ParticipantRow], *, root: str, may_sync: bool, problem: str = ""
) -> str:
    lines = "".join(_participant_html(p) for p in participants) or (
        '<tr class="empty"><td colspan="5">No participants in iJoin for this plan yet.</td></tr>'
    )
    notice = f'<p class="reason">{esc(problem)}</p>' if problem else ""
    body = (
        f'<p><a href="{esc(root + urls.plans_path())}">← {NAV_TITLE}</a></p>'
        f"<h1>Plan {esc(row.plan_id)} {esc(row.plan_name)}</h1>"
        + notice
        + '<table class="runs plans"><thead><tr><th>Last Plan Sync</th><th>Last Participant Sync</th>'
        "<th>Draft</th><th>Sync now</th></tr></thead><tbody>"
        + f'<tr class="plan" data-plan-id="{esc(row.plan_id)}">{_status_cells(row, root, may_sync)}</tr>'
        + "</tbody></table>"
        f"<h2>Participants ({len(participants)})</h2>"
        '<div class="scroll"><table class="runs" id="participants"><thead><tr><th>Participant</th>'
        "<th>Name</th><th>Synchronization</th><th>Reason</th><th>Updated in iJoin</th></tr></thead>"
        f"<tbody>{lines}</tbody></table></div>"
    )
    return page(
        f"Plan {row.plan_id}", body, root=root, extra_style=PLAN_STYLE,
        refresh_seconds=10 if row.in_progress else 0, refresh_url=root + urls.plan_path(row.plan_id),
    )  # fmt: skip
