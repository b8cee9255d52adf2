"""The draft review's Run Summary: what the reviewer decided and what iJoin did, in the Activity Monitor.

A review ends in one of four outcomes, kept in ``outcome``; its ``status`` is the iJoin Activity
Monitor's word for it:

| outcome | status | said |
|---|---|---|
| Activated | Successful | who approved, the version activated |
| Rejected | Successful with warnings | who rejected it and why; the draft stays |
| Superseded | Successful with warnings | the draft changed after it was shown; nothing activated |
| Refused by iJoin | Failed | iJoin's reasons |
| Failed | Failed | no draft to review (already activated or replaced) |
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, TriggerRule
from airflow.sdk.exceptions import AirflowFailException

from benefits_hub.models import IntegrationType, RunStatus, RunSummary
from benefits_hub.pii import redact

if TYPE_CHECKING:
    from airflow.sdk import Context

INTEGRATION_NAME = "iJoin Plan Draft Review"
OUTCOME_STATUS = {
    "Activated": RunStatus.SUCCESSFUL,
    "Rejected": RunStatus.SUCCESSFUL_WITH_WARNINGS,
    "Superseded": RunStatus.SUCCESSFUL_WITH_WARNINGS,
    "Refused by iJoin": RunStatus.FAILED,
    "Failed": RunStatus.FAILED,
}


def _who(decision: dict[str, Any] | None) -> str | None:
    user = (decision or {}).get("responded_by_user") or {}
    return str(user.get("name") or user.get("id") or "") or None


def review_outcome(
    activated: dict[str, Any] | None, refusal: dict[str, Any] | None, activate_state: str
) -> str:
    if activated:
        return "Activated"
    if activate_state == "skipped":  # a rejection skips "activate"
        return "Rejected"
    if refusal:
        return "Superseded" if refusal.get("superseded") else "Refused by iJoin"
    return "Failed"


def review_summary(
    *,
    run_id: str,
    params: dict[str, Any],
    triggered_by: str,
    start: datetime,
    request: dict[str, Any] | None,
    decision: dict[str, Any] | None,
    outcome: str,
    refusal: dict[str, Any] | None,
    validate_failure: str | None,
) -> dict[str, Any]:
    plan_id = str(params.get("plan_id") or "")
    version_id = str((request or {}).get("version_id") or params.get("version_id") or "")
    decided_by = _who(decision)
    reason = str(((decision or {}).get("params_input") or {}).get("reason") or "").strip() or None
    warnings: list[str] = []
    failure = None
    if outcome == "Rejected":
        warnings.append(
            f"Rejected by {decided_by or 'a reviewer'}"
            + (f": {reason}" if reason else " (no reason given)")
            + f". Draft {version_id} stays in iJoin, inactive."
        )
    elif outcome == "Superseded":
        warnings.append(str((refusal or {}).get("reason") or "Superseded by a newer draft."))
    elif outcome == "Refused by iJoin":
        failure = str((refusal or {}).get("reason") or "iJoin refused the activation.")
    elif outcome == "Failed":
        failure = validate_failure or f"Plan {plan_id} has no draft to review."
    summary = RunSummary(
        integration_run_name=f"Review of plan {plan_id} draft {version_id}".strip(),
        integration_name=INTEGRATION_NAME,
        integration_reference_id=run_id,
        user=triggered_by,
        integration_type=IntegrationType.NONE,
        start_date=start.isoformat(),
        end_date=datetime.now(UTC).isoformat(),
        status=OUTCOME_STATUS[outcome],
        records_processed=1,
        records_updated=int(outcome == "Activated"),
        warnings=[redact(w) for w in warnings],
        failure_reason=redact(failure) if failure else None,
    ).as_xcom()
    summary.update(
        outcome=outcome,
        plan_id=plan_id,
        plan_name=(request or {}).get("plan_name"),
        version_id=version_id,
        decided_by=decided_by,
        decision_reason=redact(reason) if reason else None,
        plan_sync_run=params.get("plan_sync_run_id"),
    )
    return summary


def _decision_operator() -> type:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    class DraftApprovalOperator(ApprovalOperator):
        """Airflow's approval, keeping the decision (who, which option, why) in an XCom of its own: on
        Reject the operator skips downstream by raising, so its return value never reaches XCom."""

        def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
            context["ti"].xcom_push(
                key="decision",
                value={
                    "chosen_options": event.get("chosen_options"),
                    "params_input": event.get("params_input") or {},
                    "responded_by_user": event.get("responded_by_user"),
                    "responded_at": str(event.get("responded_at") or ""),
                },
            )
            return super().execute_complete(context=context, event=event)

    return DraftApprovalOperator


def draft_approval(**kwargs: Any) -> BaseOperator:
    """The review's approval task (see ``DraftApprovalOperator``)."""
    return _decision_operator()(**kwargs)


class ReviewSummaryOperator(BaseOperator):
    """The review's ``summary`` task: pushes its Run Summary, then fails the run when iJoin refused."""

    ui_color = "#fdf1d6"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        dag_run = context["dag_run"]
        activated = ti.xcom_pull(task_ids="activate")
        refusal = ti.xcom_pull(task_ids="activate", key="refusal")
        states = ti.get_task_states(dag_id=ti.dag_id, task_ids=["activate"], run_ids=[ti.run_id])
        activate_state = str((states.get(ti.run_id) or {}).get("activate"))
        outcome = review_outcome(activated, refusal, activate_state)
        summary = review_summary(
            run_id=dag_run.run_id,
            params=dict(context["params"]),
            triggered_by=dag_run.triggering_user_name or "Plan Sync",
            start=dag_run.start_date or datetime.now(UTC),
            request=ti.xcom_pull(task_ids="validate"),
            decision=ti.xcom_pull(task_ids="review", key="decision"),
            outcome=outcome,
            refusal=refusal,
            validate_failure=ti.xcom_pull(task_ids="validate", key="refusal"),
        )
        self.log.info("Review of plan %s: %s", summary["plan_id"], outcome)
        ti.xcom_push(key="return_value", value=summary)
        if summary["status"] == RunStatus.FAILED.value:
            raise AirflowFailException(summary["failure_reason"] or "The draft was not activated.")
        return summary
