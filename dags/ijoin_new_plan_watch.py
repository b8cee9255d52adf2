"""
# iJoin new-plan watch

Every 10 minutes, looks for plans added in iJoin (in set-up, never synced) that the recordkeeper
knows, and starts an **iJoin Plan Sync** for just those plans: a new plan gets its plan data without
anyone asking. Each new plan is handed over once.

## Params
None: it looks for new plans by itself. To sync one particular plan now, trigger the **iJoin Plan
Sync** (`ijoin_plan_sync`) with that plan's id in Plan IDs.

## Statuses
- **success** with `sync_new_plans` skipped: no new plan.
- **success** with `sync_new_plans` done: an `ijoin_plan_sync` run was started with `plan_ids` set to the
  new plans; its own Run Summary says how each plan synced.
- **failed**: iJoin or the recordkeeper could not be read (retried first); the next check tries again.

## First three things to check
1. `find_new_plans`' log: which plans it found, and its return value (the plan ids).
2. The `ijoin_plan_sync` run it started (its conf holds the plan ids) and that run's summary.
3. The Variable `benefits_hub.ijoin_new_plan_watch.triggered`: plans already handed over. Remove a plan
   from it to have the watch start its sync again.

## Re-running safely
Safe: a plan already handed over is not triggered again.

## Notifications and deadline
- **Who is told**: the watch has no Run Summary and sends no status message of its own; the Plan Sync
  it starts notifies like any run (see `docs/notifications.md`).
- **Deadline**: a check not finished within **10 minutes** of being queued raises *Deadline missed* to
  the rules for `ijoin_new_plan_watch` that listen for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, CronTriggerTimetable, task

from benefits_hub.deadlines import finish_within
from benefits_hub.operators.stages import integration_default_args

with DAG(
    dag_id="ijoin_new_plan_watch",
    dag_display_name="iJoin New Plan Watch (first Plan Sync of a new plan)",
    description="Start a Plan Sync for each plan newly added in iJoin (every 10 minutes)",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("*/10 * * * *", timezone="UTC"),
    # A check must end before the next one is due.
    deadline=finish_within(timedelta(minutes=10)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ijoin", "plan-sync", "watcher"],
    default_args=integration_default_args(retries=1),
) as dag:

    @task.short_circuit(task_id="find_new_plans")
    def find_new_plans() -> str:
        from benefits_hub.ijoin.watch import new_plans_to_sync

        return new_plans_to_sync()

    sync_new_plans = TriggerDagRunOperator(
        task_id="sync_new_plans",
        trigger_dag_id="ijoin_plan_sync",
        conf={"plan_ids": "{{ ti.xcom_pull(task_ids='find_new_plans') }}"},
        logical_date=None,
        wait_for_completion=False,
    )

    find_new_plans() >> sync_new_plans
