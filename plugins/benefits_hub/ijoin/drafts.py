"""Draft review: a fund line-up change on an active plan waits in iJoin as a draft until a person
approves it in the Airflow UI; then iJoin's own activation validation decides.

The Plan Sync never holds its run open for a reviewer (that would block the next scheduled sync):
it requests one ``ijoin_plan_draft_review`` run per draft, and each draft waits there.
"""

from __future__ import annotations

from typing import Any

from benefits_hub.hooks.vendor_api import VendorApiError


class DraftReviewError(Exception):
    """The draft cannot be reviewed or activated; the message says why, for the reviewer."""


def _funds(version: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {f["fund_id"]: f for f in (version or {}).get("funds") or []}


def review_request(ijoin_plan: dict[str, Any] | None, plan_id: str) -> dict[str, str]:
    """Subject and body (Markdown) for the approval: what the draft changes in the fund line-up."""
    if not ijoin_plan or not ijoin_plan.get("draft"):
        raise DraftReviewError(
            f"Plan {plan_id} has no draft waiting in iJoin (already activated or replaced?)."
        )
    active, draft = _funds(ijoin_plan.get("active")), _funds(ijoin_plan["draft"])
    lines = [f"Plan **{plan_id}** ({ijoin_plan['draft'].get('plan_name') or ''}): fund line-up changes.", ""]
    for fund_id in sorted(set(draft) - set(active)):
        fund = draft[fund_id]
        lines.append(f"- added: {fund_id} {fund.get('ticker') or '(no ticker)'} {fund.get('fund_name')}")
    for fund_id in sorted(set(active) - set(draft)):
        lines.append(f"- removed: {fund_id} {active[fund_id].get('fund_name')}")
    for fund_id in sorted(set(active) & set(draft)):
        before, after = active[fund_id], draft[fund_id]
        if bool(before.get("is_open")) != bool(after.get("is_open")):
            lines.append(
                f"- {'reopened' if after.get('is_open') else 'closed'}: {fund_id} {after.get('fund_name')}"
            )
        if before.get("ticker") != after.get("ticker"):
            lines.append(f"- ticker {before.get('ticker')} → {after.get('ticker')}: {fund_id}")
    lines += [
        "",
        "Approve to activate the draft (iJoin validates it first); the enrollment site then shows it.",
    ]
    return {"subject": f"Activate the new fund line-up of plan {plan_id}?", "body": "\n".join(lines)}


def activate(ijoin: Any, plan_id: str) -> dict[str, Any]:
    try:
        return ijoin.activate_plan(plan_id)
    except VendorApiError as exc:
        if exc.status in (409, 422):
            reasons = "; ".join(exc.details) or exc.vendor_message
            raise DraftReviewError(f"iJoin refused to activate plan {plan_id}: {reasons}") from None
        raise


def reviews_to_request(deliver_results: Any) -> list[dict[str, str]]:
    """One review run's conf per plan whose sync created a draft (from the per-plan deliver results)."""
    if not deliver_results:
        return []
    if isinstance(deliver_results, dict):
        deliver_results = [deliver_results]
    plans = [
        r["details"]["plan_id"]
        for r in deliver_results
        if r and (r.get("details") or {}).get("result") == "draft_created"
    ]
    return [{"plan_id": plan_id} for plan_id in sorted(plans)]
