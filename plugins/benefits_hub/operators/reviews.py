"""The Plan Sync's last step before its summary: a draft review for each new draft its plans left.

Shared by the Plan Sync and the reconciliation's Plan Repair (which runs the sync for some plans), so a
draft a repair leaves is reviewed the same way. Each draft waits for its reviewer in a run of its own:
the sync never waits (DESIGN.md §5).
"""

from __future__ import annotations

from typing import Any

from benefits_hub.operators.stages import FAN_OUT_GROUP

REVIEW_DAG_ID = "ijoin_plan_draft_review"


def draft_review_requests(plan_sync_dag_id: str) -> tuple[Any, Any]:
    """(drafts_to_review, request_reviews): one ``ijoin_plan_draft_review`` run per draft version (its
    run id), so a re-run of the sync asks nobody twice. Call inside the DAG's context."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.sdk import TriggerRule, task

    @task(task_id="drafts_to_review", trigger_rule=TriggerRule.ALL_DONE)
    def drafts_to_review(ti: Any = None) -> list[dict[str, object]]:
        from benefits_hub.ijoin.drafts import reviews_to_request

        return reviews_to_request(
            ti.xcom_pull(task_ids=f"{FAN_OUT_GROUP}.deliver"), ti.run_id, plan_sync_dag_id
        )

    drafts = drafts_to_review()
    request_reviews = TriggerDagRunOperator.partial(
        task_id="request_reviews",
        trigger_dag_id=REVIEW_DAG_ID,
        logical_date=None,
        skip_when_already_exists=True,
    ).expand_kwargs(drafts)
    return drafts, request_reviews
