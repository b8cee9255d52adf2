"""
# PlanSource Deductions Import

Imports every employee's benefit deductions from PlanSource into the HCM's payroll deductions,
nightly at the end of the payroll day. Test employees are left out (and counted); every bad record
is explained in the error file; good records are loaded.

## Params (the trigger form)
Run it, or **Re-Run** a past run with the same params, from the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/plansource_deductions_import`): it checks every value in these words before anything starts, and a refused value changes nothing. Airflow's own Trigger form works too, but it silently changes an out-of-range number and turns the integration on even when it refuses the values.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Delta | On: only PlanSource changes in the window. Off: all changes for the plan year. |
| Include Employees | Optional. Person numbers, comma-separated, **no spaces**. Empty = everyone. |
| Lookback Days | 1-31. Empty: since the last successful run (the nightly schedule). |
| Qualify Delta | On (the schedule's default): only rows that really changed are written (always true here: unchanged rows are never rewritten). |
| Deduction Start Date | YYYY-MM-DD. For the **initial** import of a plan year: its earliest change in PlanSource. Empty on the schedule. |
| Plan Year Start Date | YYYY-MM-DD, the **day before** the plan year starts. Empty: the plan year of the last initial import. |
| Dry Run | On: write nothing to the HCM; the run's page shows a preview of every deduction a real run would create or update, with counts. No state moves (window, initial import). |
| Hold if Deduction Amounts Change for More Than (%) | Default 20. The circuit breaker (below). 100: never hold. |

## Before any data moves
- The nightly schedule refuses to run until an initial import of the plan year has completed.
- Prior-year and current-year imports never run on the same day, and the prior year goes first.
- If employee assignments changed after the last successful HCM Demographic Export, the run warns you
  to run the export first (the Run Summary's `warnings`).

## Circuit breaker: a large change waits for approval
After `transform`, the `hold` task compares the run with its threshold: when the deduction amounts of
more than **20 %** of the employees who have deductions in the HCM would change, nothing is written and
the run waits in Airflow's **Required Actions** ("Delivery held"; the Activity Monitor says *Waiting
for approval*). The approver sees the counts, the threshold that tripped and the first records.
**Approve** loads the deductions; **Reject** ends the run Failed with the reason and writes nothing, and
the window stays, so fix PlanSource first (an open-enrollment change is right: approve it). Who may
answer: the users in the Variable `benefits_hub.delivery_approvers` (empty: whoever may run this DAG).
A run waiting past its deadline raises *Deadline missed*.

## Statuses
- **Completed**: every record in the window was loaded or already up to date.
- **Completed with Errors**: some records were rejected (see the error file); the good ones were
  loaded. The run is marked failed so an integration set stops. Fix the records in PlanSource or the
  cross-reference table, then use the Transaction Assistant (`plansource_deductions_resubmit`) with
  this run's `integration_reference_id`.
- **Failed**: the run could not finish (a refused param or prerequisite, PlanSource or the HCM down after
  retries). `failure_reason` in the summary says why; nothing is half-written (one transaction per chunk,
  and a rerun is safe).

## First three things to check
1. The `summary` task's XCom/log: status, counts, `warnings`, `failure_reason`, file paths.
2. The error file: one row per rejected record (`person#record id`), the field, the rule, what to fix.
3. The failing task's log: refusals name the param or rule; PlanSource errors show status and code.

## Re-running safely
Deductions are upserted on (person number, deduction code, effective date): re-running the same window
changes nothing, and an ended coverage end-dates its deduction instead of deleting it.

Each nightly window (Lookback Days empty) starts **15 minutes before** the last successful run's end
(`[benefits_hub] window_overlap_minutes`), widened to whole days for PlanSource's filter: a change
PlanSource showed only after that run read is still imported. Rows read again are left alone when
nothing in them changed (counted as skipped). See `docs/windows.md`.

## Notifications and deadline
- **Who is told**: whoever the rules in the Airflow Variable `benefits_hub.notifications` name for this
  integration and the run's status (e-mail and/or webhook; see `docs/notifications.md`). The message
  says what failed, how many records, the error file, and links to this run.
- **Deadline**: a run not finished within **2 hours** of being queued raises *Deadline missed* to the
  rules that listen for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable

from benefits_hub.deadlines import finish_within
from benefits_hub.operators.stages import PLANSOURCE_API_POOL, integration_default_args, integration_stages
from benefits_hub.params import (
    deduction_start_date_param,
    delta_param,
    dry_run_param,
    hold_threshold_param,
    include_employees_param,
    integration_run_name_param,
    lookback_days_param,
    plan_year_start_date_param,
    qualify_delta_param,
)

INTEGRATION = "benefits_hub.deductions.importer:DeductionsImport"

with DAG(
    dag_id="plansource_deductions_import",
    dag_display_name="PlanSource Deductions Import (PlanSource to HCM payroll)",
    description="PlanSource payroll coverages to HCM payroll deductions (nightly)",
    doc_md=__doc__,
    # Nightly at the end of the payroll day (22:00 UTC), each run's interval the past day.
    schedule=CronDataIntervalTimetable("0 22 * * *", timezone="UTC"),
    # Nightly: time to fix a late import before payroll reads the deductions.
    deadline=finish_within(timedelta(hours=2)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["plansource", "import", "deductions"],
    default_args=integration_default_args(
        retry_delay=timedelta(minutes=2), max_retry_delay=timedelta(minutes=30)
    ),
    params={
        "integration_run_name": integration_run_name_param(),
        "delta": delta_param(default=True),
        "include_employees": include_employees_param(),
        "lookback_days": lookback_days_param(),
        "qualify_delta": qualify_delta_param(default=True),
        "deduction_start_date": deduction_start_date_param(),
        "plan_year_start_date": plan_year_start_date_param(),
        "dry_run": dry_run_param(),
        "hold_amount_changes_pct": hold_threshold_param("hold_amount_changes_pct"),
    },
) as dag:
    validate, extract, transform, hold, deliver, summary = integration_stages(
        INTEGRATION, vendor_pool=PLANSOURCE_API_POOL, hold=True
    )

    validate >> extract >> transform >> hold >> deliver >> summary
