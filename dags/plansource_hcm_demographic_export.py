"""
# PlanSource HCM Demographic Export

Sends employees from the HCM to PlanSource every hour: new hires are created, changed employees are
updated (only the fields that changed), terminations and rehires are passed on. A full run (Delta off)
also delivers a census file to PlanSource's SFTP inbound folder.

## Params (the trigger form)
Run it, or **Re-Run** a past run with the same params, from the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/plansource_hcm_demographic_export`): it checks every value in these words before anything starts, and a refused value changes nothing. Airflow's own Trigger form works too, but it silently changes an out-of-range number and turns the integration on even when it refuses the values.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Delta | On: only employees changed in the window. Off: everyone (full run, with census file). |
| Include Employees | Optional. Person numbers, comma-separated, **no spaces**. Empty = everyone. |
| Lookback Days | 1-31. Empty: since the last successful run (what the hourly schedule uses). |
| Qualify Delta | On: skip employees whose exported fields did not change since the last delivery. |
| Dry Run | On: send nothing; the run's page shows a preview of every create, update, termination and rehire a real run would send, with counts. The window does not move. |
| Hold if Terminations Exceed (%) | Default 2. The circuit breaker (below). 100: never hold. |
| Hold if Changing Employees Exceed (%) | Default 20. Employees PlanSource already has that would change. |
| Hold if a Full Run Reads Fewer Employees (%) | Default 10. Against the last successful full run. |

## Stages
`validate` (params, window) → `extract` (HCM, PlanSource's current records) → `transform` (SSN rules,
cross-reference tables, subscriber id / username / SSN checked against PlanSource) → `hold` (the
circuit breaker: passes at once unless the change is too large) → `deliver`
(PlanSource API; census file to SFTP on a full run) → `summary` (the Run Summary, in XCom).

## Circuit breaker: a large change waits for approval
After `transform`, the `hold` task measures what the run is about to send. When terminations exceed
**2 %** of the active employees, more than **20 %** of all employees would change in PlanSource, or a
full run reads **10 %** fewer employees than the last successful full run, nothing is sent and the run
waits in Airflow's **Required Actions** ("Delivery held"; the Activity Monitor says *Waiting for
approval*). The approver sees the counts by kind of change, the threshold that tripped and the first
records. **Approve** sends them; **Reject** ends the run Failed with the reason, sends nothing and
leaves the window, so the next run covers the same changes (correct the HCM first). Who may answer: the
users in the Variable `benefits_hub.delivery_approvers` (empty: whoever may run this DAG). A held run
waiting past the 45-minute deadline raises *Deadline missed*, and the next hour's run waits behind it.

## Statuses
- **Completed**: every employee in scope was checked and PlanSource is up to date.
- **Completed with Errors**: some employees were rejected (see the error file); the good ones were
  delivered. The run is marked failed so that an integration set stops.
- **Failed**: the run could not finish (a refused param, a vendor or database outage after retries).
  Nothing after the failing stage ran; a failed run never moves the delta window.

## First three things to check
1. The `summary` task's log or XCom: status, counts, `failure_reason`, the error file's path.
2. The error file: one row per rejected employee, the field, the rule and what to fix (SSNs masked).
   Mismatched subscriber id / username / SSN are fixed in the HCM or PlanSource, never overwritten.
3. The failing stage's log: a refused param names the param; vendor errors show PlanSource's status
   and error code; retries with backoff are logged before a failure.

## Re-running safely
Re-running the same window is safe: updates send only fields that differ from PlanSource, creates
of employees PlanSource already has are reported, not duplicated. Clearing only a failed `deliver`
is safe: what PlanSource already acknowledged is in the run's delivery journal and is not sent
again. After a long pause, clear the whole run instead, so `transform` compares with PlanSource's
current state. A narrowed run (Include Employees) never moves the hourly window.

Each delta window starts **15 minutes before** the last successful run's end
(`[benefits_hub] window_overlap_minutes`): an HCM change committed while that run was reading carries
a time before its end, and would otherwise never be read. Employees read twice are not sent twice
(only fields that differ from what PlanSource holds are sent). Keep the overlap above the longest
write transaction the HCM runs. The window ends by the HCM database's clock. See `docs/windows.md`.

## Notifications and deadline
- **Who is told**: whoever the rules in the Airflow Variable `benefits_hub.notifications` name for this
  integration and the run's status (e-mail and/or webhook; see `docs/notifications.md`). The message
  says what failed, how many records, the error file, and links to this run.
- **Deadline**: a run not finished within **45 minutes** of being queued raises *Deadline missed* to the
  rules that listen for it (a run waiting behind the previous hour's run counts too).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable

from benefits_hub.deadlines import finish_within
from benefits_hub.operators.stages import PLANSOURCE_API_POOL, integration_default_args, integration_stages
from benefits_hub.params import (
    delta_param,
    dry_run_param,
    hold_threshold_param,
    include_employees_param,
    integration_run_name_param,
    lookback_days_param,
    qualify_delta_param,
)

INTEGRATION = "benefits_hub.demographics.export:DemographicExport"

with DAG(
    dag_id="plansource_hcm_demographic_export",
    dag_display_name="PlanSource HCM Demographic Export (HCM to PlanSource)",
    description="HCM employees to PlanSource subscribers (hourly)",
    doc_md=__doc__,
    # A data-interval timetable: each hourly run's interval is the past hour (a plain "@hourly"
    # gives a zero-length interval in Airflow 3).
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    # Hourly: a run still going after 45 minutes would hold up the next hour's run.
    deadline=finish_within(timedelta(minutes=45)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["plansource", "export", "demographics"],
    default_args=integration_default_args(),
    params={
        "integration_run_name": integration_run_name_param(),
        "delta": delta_param(default=True),
        "include_employees": include_employees_param(),
        "lookback_days": lookback_days_param(),
        "qualify_delta": qualify_delta_param(default=False),
        "dry_run": dry_run_param(),
        "hold_terminations_pct": hold_threshold_param("hold_terminations_pct"),
        "hold_changing_pct": hold_threshold_param("hold_changing_pct"),
        "hold_row_drop_pct": hold_threshold_param("hold_row_drop_pct"),
    },
) as dag:
    validate, extract, transform, hold, deliver, summary = integration_stages(
        INTEGRATION, vendor_pool=PLANSOURCE_API_POOL, hold=True
    )

    validate >> extract >> transform >> hold >> deliver >> summary
