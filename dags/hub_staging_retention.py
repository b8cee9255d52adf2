"""
# Hub staging retention

Daily maintenance, not an integration: deletes the staged files of runs that have been idle longer
than the retention (`[benefits_hub] staging_retention_days`, default 30 days). Staged files hold PII
(employees, coverages, the census) only because the stages hand them to each other; once a run is
settled they go. A run's folder goes as a whole: source, changes, output, error files and the run
manifest (the Transaction Assistant can correct a run only while its folder is kept). The Run Summary
stays in Airflow.

Never deleted: the hub's own state (`_state/`, the delivered fingerprints), and the folder of a run
that is still queued or running.

## Statuses
- **success**: the pass finished; its return value counts the run folders seen, deleted and kept
  because their run is still going.
- **failed**: the staging store could not be listed or a folder could not be deleted (retried first);
  nothing is lost, the next day's pass deletes what this one did not.

## First three things to check
1. The `purge_expired_staging` log: one line per folder deleted (DAG and run id, when last written)
   and per folder kept because its run is in flight.
2. The retention setting: `AIRFLOW__BENEFITS_HUB__STAGING_RETENTION_DAYS` (1 or more) and the
   staging store (`AIRFLOW__BENEFITS_HUB__STAGING_URL`, `..._STAGING_CONN_ID`).
3. For a folder kept longer than expected: its `_run.json` names the Airflow run that owns it; that
   run is still queued or running.

## Re-running safely
Always safe: it deletes only what is past the retention, and a second pass finds nothing more.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, CronTriggerTimetable, task

from benefits_hub.operators.stages import integration_default_args

with DAG(
    dag_id="hub_staging_retention",
    dag_display_name="Hub Maintenance: Delete Old Staged Files",
    description="Delete staged files (PII) of settled runs past the retention (daily)",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("15 3 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["maintenance", "retention", "pii"],
    default_args=integration_default_args(retries=2),
) as dag:

    @task(task_id="purge_expired_staging")
    def purge_expired_staging(ti: Any = None) -> dict[str, Any]:
        from benefits_hub.retention import airflow_in_flight, purge_expired_runs

        # The task's own logger: each deletion is a line in the task log.
        return purge_expired_runs(airflow_in_flight(ti), log=ti.task.log).as_xcom()

    purge_expired_staging()
