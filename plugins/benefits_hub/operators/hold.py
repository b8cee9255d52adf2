"""The ``hold`` task between transform and deliver: the circuit breaker (:mod:`benefits_hub.breaker`).

Within its thresholds a run passes straight on. Over one, delivery waits for a person's answer in
Airflow's Required Actions (human-in-the-loop, the mechanism draft reviews use):

- **Approve**: deliver runs, and the Run Summary says who approved what was held;
- **Reject**: the run ends Failed with the threshold and the reviewer's reason; nothing was sent and
  the window did not move, so the next run covers the same changes (and holds again if the source
  is still wrong).

A Dry Run never holds: it sends nothing. A retried ``deliver`` does not ask again: the answer belongs
to this task.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Param
from airflow.sdk.exceptions import AirflowFailException

from benefits_hub.breaker import ChangeSet, Trip, held_reason, hold_body, trips
from benefits_hub.operators.stages import (
    FAILURE_XCOM_KEY,
    build_run_context,
    load_integration,
    member_args,
)
from benefits_hub.pii import redact

if TYPE_CHECKING:
    from airflow.sdk import Context

HOLD_TASK = "hold"
HOLD_XCOM_KEY = "hold"
# Who may release a held delivery: user ids, comma-separated, in this Airflow Variable (read when a
# run is held) or else ``[benefits_hub] delivery_approvers``. Empty: whoever may act on the DAG.
APPROVERS_VARIABLE = "benefits_hub.delivery_approvers"
# A hold is a task with no time limit of its own (it waits on a person); the integration's deadline
# alert says when a held run waits past its window.
NO_TIMEOUT: timedelta | None = None


def named_approvers(variable: str, option: str) -> list[dict[str, str]]:
    """The users named in Airflow Variable ``variable`` (else ``[benefits_hub] option``), as Airflow's
    HITL ``assigned_users``; empty when nobody is named."""
    from airflow.configuration import conf
    from airflow.sdk import Variable

    listed = Variable.get(variable, default=None) or conf.get("benefits_hub", option, fallback="")
    users = dict.fromkeys(u.strip() for u in listed.split(","))
    return [{"id": user, "name": user} for user in users if user]


def _run_params(context: Context, params_key: str | None) -> dict[str, Any]:
    """The run's integration params. A HITL task's own ``params`` are its answer form's (Airflow
    leaves the DAG's out of them), so they are read from the DAG's defaults and the run's conf."""
    dag_params = context["dag"].params
    params = {key: dag_params[key] for key in dag_params}
    params.update(context["dag_run"].conf or {})
    if params_key is not None:  # a member of an integration set: its own object of the set's params
        params = dict(params.get(params_key) or {})
    return params


def _decided_by(event: dict[str, Any]) -> str:
    user = event.get("responded_by_user") or {}
    return str(user.get("name") or user.get("id") or "") or "a reviewer"


def _hold_class() -> type:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    class DeliveryHoldOperator(ApprovalOperator):
        """Measures the change set; asks for approval only when a threshold trips (see module doc)."""

        ui_color = "#fbe3c2"

        def __init__(self, *, integration: str, integration_id: str | None = None,
                     params_key: str | None = None, stage_task_ids: dict[str, str] | None = None,
                     **kwargs: Any) -> None:  # fmt: skip
            kwargs.setdefault("subject", "Delivery held for approval")
            kwargs.setdefault("execution_timeout", NO_TIMEOUT)
            kwargs.setdefault("retries", 0)  # a retry would ask the same question twice
            kwargs.setdefault(
                "params",
                {"reason": Param("", type="string", title="Reason (shown in the Run Summary)")},
            )
            super().__init__(**kwargs)
            self.integration = integration
            self.integration_id = integration_id
            self.params_key = params_key
            self.stage_task_ids = stage_task_ids  # the stages' task ids, when they fan out

        def execute(self, context: Context) -> Any:
            run = build_run_context(
                context, ("validate", "extract", "transform"), self.log, **member_args(self)
            )
            run.params = _run_params(context, self.params_key)
            integration = load_integration(self.integration)(run)
            if integration.is_dry_run:
                self.log.info("Dry run: nothing will be sent, so nothing is held.")
                return {"held": False}
            change_set = integration.change_set()
            if change_set is None:
                return {"held": False}
            tripped = trips(change_set, run.params)
            for kind, count in change_set.counts.items():
                self.log.info("  %-28s %s", kind, count)
            if not tripped:
                self.log.info("Within every threshold: delivery goes ahead.")
                return {"held": False, "counts": change_set.counts}
            reason = held_reason(tripped)
            self.log.warning("%s Waiting for approval in Required Actions.", reason)
            context["ti"].xcom_push(
                key=HOLD_XCOM_KEY,
                value={"reason": reason, "trips": [t.model_dump() for t in tripped],
                       "counts": change_set.counts},
            )  # fmt: skip
            self.subject = f"Delivery held: {integration.integration_name}"
            self.body = hold_body(integration.integration_name, integration.run_name(), change_set, tripped)
            self.assigned_users = (
                named_approvers(APPROVERS_VARIABLE, "delivery_approvers") or self.assigned_users
            )
            return super().execute(context)  # Airflow's HITL request: the task waits for an answer

        def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
            answer = super(ApprovalOperator, self).execute_complete(context=context, event=event)
            held = context["ti"].xcom_pull(task_ids=self.task_id, key=HOLD_XCOM_KEY) or {}
            who = _decided_by(event)
            why = str((answer.get("params_input") or {}).get("reason") or "").strip()
            approved = answer["chosen_options"][0] == self.APPROVE
            verdict = {"held": True, "approved": approved, "decided_by": who,
                       "decision_reason": redact(why) if why else None,
                       "reason": held.get("reason"), "counts": held.get("counts") or {}}  # fmt: skip
            if approved:
                self.log.info("Approved by %s: delivery goes ahead.", who)
                return verdict
            refusal = (
                f"{held.get('reason') or 'Delivery was held for approval.'} Rejected by {who}"
                + (f": {redact(why)}" if why else " (no reason given)")
                + ". Nothing was sent and the window did not move: correct the source, then run again "
                "(or approve the next run's hold if the change is right)."
            )
            context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value=refusal)
            context["ti"].xcom_push(key=HOLD_XCOM_KEY, value={**held, **verdict})
            self.log.error("%s", refusal)
            raise AirflowFailException(refusal)

    return DeliveryHoldOperator


def delivery_hold(integration: str, **kwargs: Any) -> BaseOperator:
    """The ``hold`` task of ``integration`` (see the module doc); ``kwargs`` as a stage's."""
    kwargs.pop("pool", None)  # it waits on a person, never on a vendor
    return _hold_class()(task_id=HOLD_TASK, integration=integration, **kwargs)


__all__ = ["ChangeSet", "Trip", "delivery_hold", "named_approvers"]
