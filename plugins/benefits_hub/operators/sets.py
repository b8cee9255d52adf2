"""Integration sets: members run one after another in one DAG run, with Abort on Failure.

Each member is the member integration's own five stages in a task group, run as that integration
(its state, its staging folder) with its own params. A member that ends Completed with Errors or
Failed fails its ``summary`` task, so the next member's stages never start (upstream failed); the set's
``summary`` says which member stopped the set.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, TriggerRule

from benefits_hub.models import RunStatus
from benefits_hub.operators.stages import RunEndedFailed, stage_timeout

if TYPE_CHECKING:
    from airflow.sdk import Context


class IntegrationSetSummaryOperator(BaseOperator):
    """The set's Run Summary: each member's status and the member that stopped the set, if any."""

    ui_color = "#fdf1d6"

    def __init__(self, *, members: Sequence[str], **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        kwargs.setdefault("retries", 0)
        kwargs.setdefault("execution_timeout", stage_timeout("summary"))
        super().__init__(**kwargs)
        self.members = list(members)

    def execute(self, context: Context) -> dict[str, Any]:
        dag_run = context["dag_run"]
        ti = context["ti"]
        members: list[dict[str, Any]] = []
        stopped_by: str | None = None
        for member in self.members:
            summary = ti.xcom_pull(task_ids=f"{member}.summary")
            if summary is None:
                members.append({"member": member, "status": "Not run" if stopped_by else "Failed"})
                stopped_by = stopped_by or member
                continue
            members.append(
                {
                    "member": member,
                    "integration_name": summary["integration_name"],
                    "status": summary["status"],
                    "records_processed": summary["records_processed"],
                    "errors": summary["errors"],
                    "error_files": summary["error_files"],
                    "failure_reason": summary.get("failure_reason"),
                }
            )
            if stopped_by is None and RunStatus(summary["status"]).fails_the_run:
                stopped_by = member
        name = (context["params"].get("integration_run_name") or "").strip()
        start = dag_run.start_date or datetime.now(UTC)
        status = RunStatus.FAILED if stopped_by else RunStatus.COMPLETED
        # The set by its display name, as the UI lists it (the seed's "Process Name").
        display = str(getattr(context.get("dag"), "dag_display_name", None) or dag_run.dag_id)
        result = {
            "process_name": dag_run.dag_id,
            "integration_name": display,
            "integration_type": "Integration Set",
            "integration_run_name": name or f"{display} {start:%Y-%m-%d %H:%M:%S}",
            "integration_reference_id": dag_run.run_id,
            "status": str(status),
            "stopped_by": stopped_by,
            "members": members,
            "start_date": start.isoformat(),
            "end_date": datetime.now(UTC).isoformat(),
        }
        for member in members:
            self.log.info("  %-10s %s", member["member"], member["status"])
        ti.xcom_push(key="return_value", value=result)
        if stopped_by:
            stopping = next(m for m in members if m["member"] == stopped_by)
            self.log.error(
                "Abort on Failure: the set stopped at '%s' (%s); the members after it did not run.",
                stopped_by, stopping["status"],
            )  # fmt: skip
            raise RunEndedFailed(1)  # one line in the log, no traceback (see RunEndedFailed)
        return result
