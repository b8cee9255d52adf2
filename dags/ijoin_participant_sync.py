"""
# Recordkeeper → iJoin Participant Sync

Brings each plan's participants from the recordkeeper to iJoin daily and on demand: census, balances
by fund and money source, investments and allocations, contribution rates (pre-tax, Roth, after-tax),
pay frequency and salary. One task per plan (dynamic task mapping).

## Params (the trigger form)
Run it, or **Re-Run** a past run with the same params, from the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/ijoin_participant_sync`): it checks every value in these words before anything starts, and a refused value changes nothing. Airflow's own Trigger form works too, but it silently changes an out-of-range number and turns the integration on even when it refuses the values.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Plan IDs | Optional. Recordkeeper plan ids, comma-separated, no spaces. Empty = every plan. |
| Dry Run | On: send nothing to iJoin; the run's page shows a preview of every participant each plan would send, SSNs and birth dates masked. |
| Hold if Terminations Exceed (%) | Default 2. The circuit breaker (below): active participants in iJoin the run would terminate. 100: never hold. |
| Hold if Changing Participants Exceed (%) | Default 20. Participants iJoin holds whose census, pay, rates or allocations would change. |
| Hold if the Recordkeeper Gives Fewer Participants (%) | Default 10. Against how many each plan's last delivered sync read. |
| Hold if Contribution Rates Change for More Than (%) | Default 20. Participants iJoin holds who would get new contribution rates. |

## Rules applied
- **Pay frequency**: the plan's pay-frequency code; for 'V' (variable), each participant's most frequent
  pay frequency in the recordkeeper's payroll over the last 3 months. A tie goes to the frequency of the
  most recent payroll among the tied ones (weekly 6 times and bi-weekly 6 times, last paid bi-weekly:
  Bi-Weekly). No payroll in those months: the participant syncs without it, with a warning.
- **Salary**: census annual salary, else computed annual compensation, else the prior plan year's, else 0.
- **Allocations** must add up to 100%: if not, the participant syncs without them, is marked
  "Synchronized with warnings", and an error row says what to correct in the recordkeeper.

## Stages
`validate` (which plans) → per plan: `extract` (the recordkeeper's participants; iJoin's current ones)
→ `transform` (the rules below; what would change in iJoin) → `hold` (the circuit breaker, once for
the whole run: passes at once unless the change is too large) → per plan: `deliver` (upserts; iJoin's
activity log) → `summary` (the Run Summary, in XCom).

## Circuit breaker: a large change waits for approval
After every plan's `transform`, the `hold` task measures what the whole run would change in iJoin,
against the participants iJoin holds. When terminations exceed **2 %** of its active participants, more
than **20 %** would change, the recordkeeper gives **10 %** fewer participants than the plans' last
delivered syncs read (a truncated load), or more than **20 %** would get new contribution rates, no
plan is sent and the run waits in Airflow's **Required Actions** ("Delivery held"; the Activity Monitor says *Waiting for approval*). The
approver sees the counts by kind of change, the threshold that tripped and the first participants (ids
and field names, no values). **Approve** sends every plan; **Reject** ends the run Failed with the
reason and sends nothing, so correct the recordkeeper first. Who may answer: the users in the Variable
`benefits_hub.delivery_approvers` (empty: whoever may run this DAG). The first sync of a plan is never
held (iJoin holds nobody yet). A Participant Repair is never held: a person chose what it sends.

## Statuses (per plan in `outcomes`; per participant in iJoin's synchronization status)
- **Successful** / **Successful with warnings** (some participants synchronized with warnings).
- **Failed** for a plan iJoin does not have yet: **run Plan Sync first**.
- The run: Successful / Successful with warnings; **Completed with Errors** (marked failed) when a
  plan failed or a participant had errors; **Failed** when it could not start.

## First three things to check
1. The `summary` task: `outcomes` per plan, counts, `error_files`.
2. The error file: one row per participant problem (`plan/participant`), what to fix.
3. iJoin's activity log for the plan; its `payload_url` is exactly what was sent (no SSNs).

## Re-running safely
Always safe: participants are upserted on (plan, participant); unchanged ones are reported unchanged.

## Notifications and deadline
- **Who is told**: whoever the rules in the Airflow Variable `benefits_hub.notifications` name for this
  integration and the run's status (e-mail and/or webhook; see `docs/notifications.md`). The message
  says what failed, how many records, the error file, and links to this run.
- **Deadline**: a run not finished within **2 hours** of being queued raises *Deadline missed* to the
  rules that listen for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronTriggerTimetable

from benefits_hub.deadlines import finish_within
from benefits_hub.operators.stages import IJOIN_API_POOL, fanned_out_stages, integration_default_args
from benefits_hub.params import (
    dry_run_param,
    hold_threshold_param,
    integration_run_name_param,
    plan_ids_param,
)

INTEGRATION = "benefits_hub.ijoin.participant_sync:ParticipantSync"

with DAG(
    dag_id="ijoin_participant_sync",
    dag_display_name="iJoin Participant Sync (Recordkeeper to iJoin)",
    description="Recordkeeper participants to iJoin (daily, manual)",
    doc_md=__doc__,
    # Daily, early morning (the seed: a daily Participant Sync for all plans).
    schedule=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
    # Daily, one task per plan.
    deadline=finish_within(timedelta(hours=2)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ijoin", "recordkeeper", "participant-sync"],
    default_args=integration_default_args(),
    params={
        "integration_run_name": integration_run_name_param(),
        "plan_ids": plan_ids_param(),
        "dry_run": dry_run_param(),
        "hold_terminations_pct": hold_threshold_param("hold_terminations_pct", subject="participants"),
        "hold_changing_pct": hold_threshold_param("hold_changing_pct", subject="participants"),
        "hold_row_drop_pct": hold_threshold_param("hold_row_drop_pct", subject="participants"),
        "hold_rate_changes_pct": hold_threshold_param("hold_rate_changes_pct", subject="participants"),
    },
) as dag:
    # Per plan: extract → transform, then the run's one hold, then per plan: deliver.
    validate, per_plan, summary = fanned_out_stages(INTEGRATION, vendor_pool=IJOIN_API_POOL, hold=True)

    validate >> per_plan >> summary
