"""Draft review: a fund line-up change on an active plan waits in iJoin as a draft until a person
approves it in the Airflow UI; then iJoin's own activation validation decides.

The Plan Sync never holds its run open for a reviewer (that would block the next scheduled sync):
it requests one ``ijoin_plan_draft_review`` run per draft **version**, with a run id made from the plan
and the version, so a re-run of the sync asks nobody twice. A review shows one version and pins it:
approving activates exactly that version, and iJoin refuses when the draft has changed since (the
newer draft has a review of its own).
"""

from __future__ import annotations

from typing import Any

from benefits_hub.hooks.vendor_api import VendorApiError

# What a reviewer reads besides the funds: the plan's specifications and contacts.
SPEC_LABELS = {
    "plan_name": "Plan name",
    "external_plan_id": "External plan id",
    "employer_name": "Employer name",
    "employer_ein": "Employer EIN",
    "phone_contact": "Phone contact",
    "contacts": "Contacts",
    "match_tiers": "Matching tiers",
    "default_investment": "Default investment",
}


class DraftReviewError(Exception):
    """The draft cannot be reviewed or activated; the message says why, for the reviewer."""


class DraftSuperseded(DraftReviewError):
    """The draft changed after the reviewer was shown it: nothing is activated; the newer draft has a
    review of its own."""


def _funds(version: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {f["fund_id"]: f for f in (version or {}).get("funds") or []}


def _open(fund: dict[str, Any] | None) -> str:
    if fund is None:
        return "—"
    return "open" if fund.get("is_open", True) else "closed"


def lineup_rows(active: dict[str, Any] | None, draft: dict[str, Any]) -> list[dict[str, str]]:
    """The current and the draft line-up side by side, one row per fund, with what changed."""
    before, after = _funds(active), _funds(draft)
    rows = []
    for fund_id in sorted(set(before) | set(after)):
        old, new = before.get(fund_id), after.get(fund_id)
        if old is None:
            change = "added"
        elif new is None:
            change = "removed"
        elif _open(old) != _open(new):
            change = "closed" if _open(new) == "closed" else "reopened"
        elif old.get("ticker") != new.get("ticker"):
            change = "ticker changed"
        else:
            change = ""
        fund = new or old or {}
        rows.append(
            {
                "fund_id": fund_id,
                "fund_name": str(fund.get("fund_name") or ""),
                "current": f"{old.get('ticker') or '(no ticker)'} {_open(old)}" if old else "—",
                "draft": f"{new.get('ticker') or '(no ticker)'} {_open(new)}" if new else "—",
                "change": change,
            }
        )
    return rows


def spec_changes(active: dict[str, Any] | None, draft: dict[str, Any]) -> list[str]:
    return [
        label
        for field, label in SPEC_LABELS.items()
        if active is not None and (active.get(field) != draft.get(field))
    ]


def spec_value(value: Any) -> str:
    """A specification's value as the reviewer reads it in a table cell."""
    if value in (None, "", [], {}):
        return "(none)"
    if isinstance(value, dict):  # contacts by role
        return "; ".join(
            f"{str(role).replace('_', ' ')}: " + " ".join(str(v) for v in (c or {}).values() if v)
            if isinstance(c, dict)
            else f"{role}: {c}"
            for role, c in sorted(value.items())
        )
    if isinstance(value, list):  # matching tiers
        return "; ".join(
            f"{t.get('match_pct')}% match on {t.get('contribution_pct')}%" if isinstance(t, dict) else str(t)
            for t in value
        )
    return str(value).replace("|", "/")


PLAN_SYNC_DAG_ID = "ijoin_plan_sync"


def review_request(
    ijoin_plan: dict[str, Any] | None,
    plan_id: str,
    plan_sync_run_id: str | None = None,
    plan_sync_dag_id: str | None = None,
) -> dict[str, str]:
    """Subject and body (Markdown) for the approval, and the draft version it shows (pinned)."""
    if not ijoin_plan or not ijoin_plan.get("draft"):
        raise DraftReviewError(
            f"Plan {plan_id} has no draft waiting in iJoin (already activated or replaced?)."
        )
    draft, active = ijoin_plan["draft"], ijoin_plan.get("active")
    version_id = str(draft.get("version_id") or "")
    plan_name = str(draft.get("plan_name") or "")
    lines = [
        f"Plan **{plan_id}** {plan_name}: draft **{version_id}** changes the fund line-up.",
        "",
        "| Fund | Name | Current | Draft | Change |",
        "|---|---|---|---|---|",
    ]
    for row in lineup_rows(active, draft):
        change = f"**{row['change']}**" if row["change"] else ""
        lines.append(
            f"| {row['fund_id']} | {row['fund_name']} | {row['current']} | {row['draft']} | {change} |"
        )
    changed = spec_changes(active, draft)
    lines += [
        "",
        f"Also changed: {', '.join(changed)}." if changed else "No specification or contact change.",
    ]
    if changed:
        label_to_field = {label: field for field, label in SPEC_LABELS.items()}
        lines += ["", "| Specification | Current | Draft |", "|---|---|---|"]
        for label in changed:
            field = label_to_field[label]
            lines.append(
                f"| {label} | {spec_value((active or {}).get(field))} | {spec_value(draft.get(field))} |"
            )
    if plan_sync_run_id:
        from benefits_hub.ui import urls

        sync_page = urls.run_detail_path(plan_sync_dag_id or PLAN_SYNC_DAG_ID, plan_sync_run_id)
        lines += ["", f"Found by the Plan Sync run [{plan_sync_run_id}]({sync_page}) (Activity Monitor)."]
    lines += [
        "",
        f"Approve to activate exactly draft {version_id} (iJoin validates it first); the enrollment site "
        "then shows it. If the draft changes before you answer, this review activates nothing and a new one "
        "asks about the newer draft.",
    ]
    return {
        "subject": f"Activate the new fund line-up of plan {plan_id} ({plan_name})?",
        "body": "\n".join(lines),
        "version_id": version_id,
        "plan_name": plan_name,
    }


def activate(ijoin: Any, plan_id: str, version_id: str | None = None) -> dict[str, Any]:
    """Activate the draft version the reviewer approved (``version_id``), and nothing else."""
    try:
        return ijoin.activate_plan(plan_id, version_id)
    except VendorApiError as exc:
        if exc.status == 409 and exc.error_code == "draft_changed":
            raise DraftSuperseded(
                f"Superseded by a newer draft: plan {plan_id}'s draft changed after draft {version_id} was "
                "reviewed, so nothing was activated. The newer draft has a review of its own."
            ) from None
        if exc.status in (409, 422):
            reasons = "; ".join(exc.details) or exc.vendor_message
            raise DraftReviewError(f"iJoin refused to activate plan {plan_id}: {reasons}") from None
        raise


def review_run_id(plan_id: str, version_id: str) -> str:
    """One review per draft version: the review run's id (a second request for it is skipped)."""
    return f"review__{plan_id}__{version_id}"


def reviews_to_request(
    deliver_results: Any, plan_sync_run_id: str | None = None, plan_sync_dag_id: str = PLAN_SYNC_DAG_ID
) -> list[dict[str, Any]]:
    """One review run per plan whose sync left a draft, keyed by the draft version (from the per-plan
    deliver results): ``{"conf": ..., "trigger_run_id": ...}`` for a mapped TriggerDagRunOperator.
    ``plan_sync_dag_id``: the Plan Sync's DAG, or the repair DAG that ran it (the review links it)."""
    if not deliver_results:
        return []
    if isinstance(deliver_results, dict):
        deliver_results = [deliver_results]
    drafts = sorted(
        ((r["details"]["plan_id"], str(r["details"].get("draft_version_id") or "")) for r in deliver_results
         if r and (r.get("details") or {}).get("result") == "draft_created"
         and not r["details"].get("never_activatable")),
    )  # fmt: skip
    return [
        {
            "conf": {
                "plan_id": plan_id,
                "version_id": version_id,
                "plan_sync_run_id": plan_sync_run_id,
                "plan_sync_dag_id": plan_sync_dag_id,
            },
            "trigger_run_id": review_run_id(plan_id, version_id or "draft"),
        }
        for plan_id, version_id in drafts
    ]
