"""
# iJoin plan draft review

One run per draft version: when a Plan Sync finds that an **active** plan's fund line-up changed, iJoin
keeps the change as a draft and the sync requests a run of this DAG for that plan and draft version
(run id `review__<plan>__<version>`, so never two for the same version). The run shows the current
and the draft line-up side by side and waits for a person to **approve** or **reject** it (Airflow UI
→ Required Actions); approval asks iJoin to activate **exactly the version shown**. iJoin's own
validation can still refuse.

## Params
| Param | What to enter |
|---|---|
| Plan ID | The plan whose draft to review (set by the Plan Sync). |
| Draft version | The draft version to review (set by the Plan Sync); empty = the plan's current draft. |

## Statuses
- **Activated**: approved, and iJoin activated the draft: the enrollment site shows the new line-up.
- **Rejected**: the reviewer rejected it; the draft stays in iJoin, inactive. Who decided is in the
  summary.
- **Superseded**: the draft changed after this review showed it (a later Plan Sync): nothing was
  activated; the newer draft has its own review. A waiting review closes itself within a minute of
  the change (the triggerer looks at iJoin every `[benefits_hub] draft_check_seconds`, default 60),
  so Required Actions never asks about a draft that is gone.
- **Refused by iJoin**: approved, but iJoin's validation refused the activation (its reasons are in
  the summary): fix them in the recordkeeper, run the Plan Sync for the plan, and review the new draft.
- **Failed**: no draft to review (already activated or replaced).

## Who may approve
The user ids in the Airflow Variable `benefits_hub.draft_approvers` (comma-separated; Admin →
Variables), else in `[benefits_hub] draft_approvers`; read when a review starts. Airflow refuses
anyone else ("not a respondent"). Empty: whoever may act on this DAG. The summary records who decided.

## First three things to check
1. The `review` task: the change shown to the reviewer and the decision.
2. The `summary` task: the outcome and iJoin's reasons if it refused.
3. iJoin's plan (Plan Details / Investment Paths): active and draft versions.

## Re-running safely
Safe: activation happens only after an approval, and only of the version shown. The review waits on
the **triggerer** (like every deferrable task): without one running, a waiting review is not closed
when its draft changes (iJoin's version check still refuses the stale approval).

## Notifications and deadline
- **Who is told**: no status message of its own: the Plan Sync's *Successful with warnings* message
  announced the draft (a rule for `ijoin_plan_sync`; see `docs/notifications.md`).
- **No deadline**: a run waits for its reviewer as long as it takes (Airflow UI → Required Actions).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from benefits_hub.ijoin.review import ReviewSummaryOperator, draft_approval
from benefits_hub.operators.stages import integration_default_args, stage_timeout

with DAG(
    dag_id="ijoin_plan_draft_review",
    dag_display_name="iJoin Plan Draft Review (approve a fund line-up change)",
    # Started only on a person's behalf (never on a schedule): it must never wait paused.
    is_paused_upon_creation=False,
    description="A person approves a plan's fund line-up draft; then iJoin activates it",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=16,  # one run per draft: reviewers answer in any order
    tags=["ijoin", "plan-sync", "review"],
    default_args=integration_default_args(retries=2),
    params={
        "plan_id": Param(
            None, type=["null", "string"], title="Plan ID", description="The plan whose draft to review."
        ),
        "version_id": Param(
            None,
            type=["null", "string"],
            title="Draft version",
            description="The draft version to review (set by the Plan Sync); empty = the current draft.",
        ),
        "plan_sync_run_id": Param(
            None,
            type=["null", "string"],
            title="Plan Sync run",
            description="The Plan Sync run that found the draft (set by the Plan Sync).",
        ),
        "plan_sync_dag_id": Param(
            None,
            type=["null", "string"],
            title="Plan Sync DAG",
            description="The DAG of that run: the Plan Sync, or a reconciliation's Plan Repair.",
        ),
    },
) as dag:

    @task(task_id="validate", execution_timeout=stage_timeout("validate"))
    def validate(params: dict[str, Any]) -> dict[str, str]:
        from airflow.sdk.exceptions import AirflowFailException

        from benefits_hub.hooks.ijoin import IJoinHook
        from benefits_hub.ijoin.drafts import DraftReviewError, review_request

        def refuse(reason: str) -> None:
            get_current_context()["ti"].xcom_push(key="refusal", value=reason)
            raise AirflowFailException(reason)

        plan_id = (params.get("plan_id") or "").strip()
        if not plan_id:
            refuse("Param 'plan_id': required (the plan whose draft to review).")
        try:
            request = review_request(
                IJoinHook().get_plan(plan_id),
                plan_id,
                params.get("plan_sync_run_id"),
                params.get("plan_sync_dag_id"),
            )
        except DraftReviewError as exc:
            refuse(str(exc))
        wanted = (params.get("version_id") or "").strip()
        if wanted and wanted != request["version_id"]:
            refuse(
                f"Superseded by a newer draft: plan {plan_id}'s draft is {request['version_id']} now, not "
                f"{wanted}; the newer draft has a review of its own."
            )
        return {"plan_id": plan_id, **request}

    review = draft_approval(
        task_id="review",
        subject="{{ ti.xcom_pull(task_ids='validate')['subject'] }}",
        body="{{ ti.xcom_pull(task_ids='validate')['body'] }}",
        # Recorded with the decision (and shown in the review's Run Summary): why, when rejecting.
        params={"reason": Param("", type=["null", "string"], title="Reason", description="Why (to reject).")},
        retries=0,
    )

    @task(task_id="activate", execution_timeout=stage_timeout("deliver"))
    def activate(request: dict[str, str]) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from benefits_hub.hooks.ijoin import IJoinHook
        from benefits_hub.ijoin import drafts

        try:
            # Exactly the version the reviewer was shown: iJoin refuses if the draft changed since.
            answer = drafts.activate(IJoinHook(), request["plan_id"], request["version_id"])
        except drafts.DraftReviewError as exc:
            ti = get_current_context()["ti"]
            ti.xcom_push(key="refusal", value={"superseded": isinstance(exc, drafts.DraftSuperseded),
                                               "reason": str(exc)})  # fmt: skip
            raise AirflowFailException(str(exc)) from None
        return {
            "plan_id": request["plan_id"],
            "version_id": request["version_id"],
            "result": answer.get("result"),
        }

    # The outcome in the Activity Monitor: Activated, Rejected (who, why), Superseded, Refused by iJoin.
    summary = ReviewSummaryOperator(task_id="summary")

    request = validate()
    request >> review
    review >> activate(request) >> summary
