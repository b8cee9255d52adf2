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

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, TriggerRule

from benefits_hub.models import IntegrationType, RunStatus, RunSummary
from benefits_hub.operators.stages import RunEndedFailed, stage_timeout
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


# Who may approve a draft: user ids as the auth manager knows them (the simple auth manager: the
# username), comma-separated, in the Airflow Variable (editable in Admin → Variables, read when a review
# starts) or else ``[benefits_hub] draft_approvers``. Empty: whoever may act on the review DAG.
APPROVERS_VARIABLE = "benefits_hub.draft_approvers"


def draft_approvers() -> list[dict[str, str]]:
    """The named approvers, as Airflow's HITL ``assigned_users``."""
    from benefits_hub.operators.hold import named_approvers

    return named_approvers(APPROVERS_VARIABLE, "draft_approvers")


# How often a waiting review asks iJoin whether its draft is still the one shown (``[benefits_hub]
# draft_check_seconds``): a newer draft closes the review at once rather than when someone answers it.
DEFAULT_DRAFT_CHECK_SECONDS = 60.0


def review_outcome(
    activated: dict[str, Any] | None,
    refusal: dict[str, Any] | None,
    activate_state: str,
    decision: dict[str, Any] | None = None,
) -> str:
    if activated:
        return "Activated"
    if (decision or {}).get("superseded"):  # closed by the hub, not rejected by a person
        return "Superseded"
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
        reason = (decision or {}).get("superseded") or (refusal or {}).get("reason")
        warnings.append(str(reason or "Superseded by a newer draft."))
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
    )
    # The run that found the draft, linked on the review's page: the Plan Sync's, or a repair's.
    found_by = "plan_repair_run" if params.get("plan_sync_dag_id") == "ijoin_plan_repair" else "plan_sync_run"
    summary[found_by] = params.get("plan_sync_run_id")
    return summary


def draft_gone_reason(plan_id: str, shown_version: str, current_version: str | None) -> str | None:
    """Why a waiting review no longer stands (iJoin's draft is not the version shown), else None."""
    if current_version == shown_version:
        return None
    if not current_version:
        return (
            f"Closed: plan {plan_id} has no draft in iJoin any more (activated or removed there), so "
            f"draft {shown_version} cannot be approved here."
        )
    return (
        f"Superseded by a newer draft: plan {plan_id}'s draft changed from {shown_version} to "
        f"{current_version} before anyone answered, so this review was closed and nothing was activated. "
        "The newer draft has a review of its own."
    )


def _current_draft_version(plan_id: str) -> str | None:
    from benefits_hub.hooks.ijoin import IJoinHook

    draft = (IJoinHook().get_plan(plan_id) or {}).get("draft") or {}
    return str(draft.get("version_id") or "") or None


@cache  # one class, however often the triggerer or a defer asks for it
def _trigger_class() -> type:
    from airflow.providers.standard.triggers.hitl import HITLTrigger
    from airflow.sdk.execution_time.hitl import update_hitl_detail_response
    from airflow.triggers.base import TriggerEvent
    from asgiref.sync import sync_to_async

    class DraftReviewTrigger(HITLTrigger):
        """The review's wait on the triggerer: a look at iJoin every ``draft_check_interval`` seconds.
        When the draft is no longer the version shown, the hub answers the request itself
        ("superseded"), so it leaves Required Actions and nobody approves what they were not shown.
        Needs the triggerer (as every deferrable operator); ``dag.test()`` cannot run it."""

        def __init__(
            self, *, plan_id: str, version_id: str, draft_check_interval: float, **kwargs: Any
        ) -> None:
            super().__init__(**kwargs)
            self.plan_id = plan_id
            self.version_id = version_id
            self.draft_check_interval = draft_check_interval

        def serialize(self) -> tuple[str, dict[str, Any]]:
            _, kwargs = super().serialize()
            return (
                "benefits_hub.ijoin.review.DraftReviewTrigger",
                {**kwargs, "plan_id": self.plan_id, "version_id": self.version_id,
                 "draft_check_interval": self.draft_check_interval},
            )  # fmt: skip

        async def _superseded(self) -> TriggerEvent | None:
            try:
                current = await sync_to_async(_current_draft_version)(self.plan_id)
            except Exception as exc:  # iJoin down: keep waiting, the person can still answer
                self.log.warning("Could not check plan %s's draft in iJoin: %s", self.plan_id, exc)
                return None
            reason = draft_gone_reason(self.plan_id, self.version_id, current)
            if reason is None:
                return None
            try:
                resp = await sync_to_async(update_hitl_detail_response)(
                    ti_id=self.ti_id, chosen_options=["Reject"], params_input={"reason": reason}
                )
            except Exception:  # a person answered first: their answer stands
                return None
            self.log.info("Review of plan %s closed: %s", self.plan_id, reason)
            return TriggerEvent(
                {"chosen_options": ["Reject"], "params_input": {"reason": reason},
                 "responded_at": resp.responded_at, "responded_by_user": None, "superseded": reason}
            )  # fmt: skip

        async def run(self) -> AsyncIterator[TriggerEvent]:
            # Only the draft is watched here: a person's answer resumes the deferred task through the
            # api-server directly, and a second resume from this trigger would race it. The first look
            # is one interval in: an answer before the scheduler has seen the deferring process end
            # races Airflow's executor-event handling, which can fail the resumed try.
            while True:
                await asyncio.sleep(self.draft_check_interval)
                if self.timeout_datetime and self.timeout_datetime < datetime.now(UTC):
                    yield await self._handle_timeout()
                    return
                event = await self._superseded()
                if event:
                    yield event
                    return

    return DraftReviewTrigger


def __getattr__(name: str) -> Any:
    # The triggerer imports the trigger by this path; built lazily so DAG parsing stays light.
    if name == "DraftReviewTrigger":
        return _trigger_class()
    raise AttributeError(name)


def _decision_operator() -> type:
    from airflow.configuration import conf
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk.execution_time.hitl import upsert_hitl_detail

    class DraftApprovalOperator(ApprovalOperator):
        """Airflow's approval, keeping the decision (who, which option, why) in an XCom of its own: on
        Reject the operator skips downstream by raising, so its return value never reaches XCom.

        It waits on the triggerer (``DraftReviewTrigger``) rather than in ``awaiting_input``, so that
        a newer draft closes the request as soon as it appears. A person's answer through Required
        Actions resumes a deferred task just as it resumes a waiting one."""

        def execute(self, context: Context) -> None:
            request = context["ti"].xcom_pull(task_ids="validate") or {}
            # Only the named approvers may answer (Airflow refuses anyone else), read now so that a
            # change to the list applies to the next review without a deploy.
            self.assigned_users = draft_approvers() or self.assigned_users
            upsert_hitl_detail(
                ti_id=context["task_instance"].id,
                options=self.options,
                subject=self.subject,
                body=self.body,
                defaults=self.defaults,
                multiple=self.multiple,
                params=self.serialized_params,
                assigned_users=self.assigned_users,
            )
            self.log.info("Waiting for a reviewer (Airflow UI → Required Actions)")
            interval = conf.getfloat(
                "benefits_hub", "draft_check_seconds", fallback=DEFAULT_DRAFT_CHECK_SECONDS
            )
            self.defer(
                trigger=_trigger_class()(
                    ti_id=context["task_instance"].id,
                    options=self.options,
                    defaults=self.defaults,
                    params=self.serialized_params,
                    multiple=self.multiple,
                    timeout_datetime=None,
                    plan_id=str(request.get("plan_id") or ""),
                    version_id=str(request.get("version_id") or ""),
                    draft_check_interval=interval,
                ),
                method_name="execute_complete",
            )

        def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
            context["ti"].xcom_push(
                key="decision",
                value={
                    "chosen_options": event.get("chosen_options"),
                    "params_input": event.get("params_input") or {},
                    "responded_by_user": event.get("responded_by_user"),
                    "responded_at": str(event.get("responded_at") or ""),
                    "superseded": event.get("superseded"),
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
        kwargs.setdefault("execution_timeout", stage_timeout("summary"))
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        dag_run = context["dag_run"]
        activated = ti.xcom_pull(task_ids="activate")
        refusal = ti.xcom_pull(task_ids="activate", key="refusal")
        states = ti.get_task_states(dag_id=ti.dag_id, task_ids=["activate"], run_ids=[ti.run_id])
        activate_state = str((states.get(ti.run_id) or {}).get("activate"))
        decision = ti.xcom_pull(task_ids="review", key="decision")
        outcome = review_outcome(activated, refusal, activate_state, decision)
        summary = review_summary(
            run_id=dag_run.run_id,
            params=dict(context["params"]),
            triggered_by=dag_run.triggering_user_name or "Plan Sync",
            start=dag_run.start_date or datetime.now(UTC),
            request=ti.xcom_pull(task_ids="validate"),
            decision=decision,
            outcome=outcome,
            refusal=refusal,
            validate_failure=ti.xcom_pull(task_ids="validate", key="refusal"),
        )
        self.log.info("Review of plan %s: %s", summary["plan_id"], outcome)
        ti.xcom_push(key="return_value", value=summary)
        if summary["status"] == RunStatus.FAILED.value:
            self.log.error("%s", summary["failure_reason"] or "The draft was not activated.")
            raise RunEndedFailed(1)  # one line in the log, no traceback (see RunEndedFailed)
        return summary
