"""
# iJoin → recordkeeper Enrollment Write-back

Applies the elections participants made on iJoin's enrollment site (contribution-rate and allocation
changes) to the recordkeeper, daily, and marks each one sent in iJoin. This is the only write the hub
makes to the recordkeeper.

## Params (the trigger form)
Run it, or **Re-Run** a past run with the same params, from the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/ijoin_enrollment_writeback`): it checks every value in these words before anything starts, and a refused value changes nothing. Airflow's own Trigger form works too, but it silently changes an out-of-range number and turns the integration on even when it refuses the values.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Dry Run | On: apply nothing and mark nothing sent; the run's page shows a preview of each election a real run would apply (or only mark sent, when an earlier run applied it). |

## Statuses
- **Successful**: every pending election was applied (or had been applied already) and marked sent.
- **Completed with Errors** (marked failed): some elections were refused (allocations not adding up to
  100%, a rate outside 0-100%, an unknown participant); they stay pending in iJoin, the error file says
  why. The good ones were applied.
- **Failed**: the run could not finish (iJoin or the recordkeeper down after retries).

## First three things to check
1. The `summary` task: applied, already applied, errors.
2. The error file: one row per refused election (`election_id`), the reason.
3. The `deliver` log: each election is applied in one recordkeeper transaction with its
   `rk_applied_election` row, then marked sent in iJoin.

## Re-running safely
Always safe: an election recorded in `rk_applied_election` is never applied again; a run that stopped
between applying and marking sent only marks it sent next time.

## Notifications and deadline
- **Who is told**: whoever the rules in the Airflow Variable `benefits_hub.notifications` name for this
  integration and the run's status (e-mail and/or webhook; see `docs/notifications.md`). The message
  says what failed, how many records, the error file, and links to this run.
- **Deadline**: a run not finished within **30 minutes** of being queued raises *Deadline missed* to the
  rules that listen for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronTriggerTimetable

from benefits_hub.deadlines import finish_within
from benefits_hub.operators.stages import IJOIN_API_POOL, integration_default_args, integration_stages
from benefits_hub.params import dry_run_param, integration_run_name_param

INTEGRATION = "benefits_hub.ijoin.writeback:EnrollmentWriteback"

with DAG(
    dag_id="ijoin_enrollment_writeback",
    dag_display_name="iJoin Enrollment Elections Write-back (iJoin to Recordkeeper)",
    description="iJoin enrollment-site elections to the recordkeeper (daily)",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("30 6 * * *", timezone="UTC"),
    # Daily; only the elections made since the last run.
    deadline=finish_within(timedelta(minutes=30)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ijoin", "recordkeeper", "writeback"],
    default_args=integration_default_args(),
    params={"integration_run_name": integration_run_name_param(), "dry_run": dry_run_param()},
) as dag:
    validate, extract, transform, deliver, summary = integration_stages(
        INTEGRATION, vendor_pool=IJOIN_API_POOL
    )

    validate >> extract >> transform >> deliver >> summary
