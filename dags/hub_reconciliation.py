"""
# Hub Reconciliation (are the systems in step?)

Compares the **end states** of the systems the integrations keep in step, nightly, and lists every
discrepancy: an employee missing in PlanSource, a PlanSource subscriber the HCM does not have, a
termination only one side knows, a field that differs. It changes nothing anywhere.

Each comparison uses the integration's own mappings and rules, so a value the integration would send
identically counts as in step. It compares **HCM ↔ PlanSource demographics** (the HCM Demographic
Export's direction) and **PlanSource coverages ↔ HCM payroll deductions** of the plan year the
Deductions Import last loaded (the import's direction: missing in payroll, in payroll but not in
PlanSource, an amount or date that differs, a test employee's deduction in payroll, a PlanSource record
the import refuses), and **Recordkeeper ↔ iJoin** plans and participants (the iJoin syncs' direction:
plan specifications, contacts and fund line-ups by the Plan Sync's rules, leaving alone what iJoin says
not to override; participants' census fields, allocations and contribution rates by the Participant
Sync's rules; a new line-up waiting for its review, and an election made in iJoin that is not in the
recordkeeper yet, are told apart from what a sync would repair).

## Params (the trigger form)
Run it from the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/hub_reconciliation`): it checks every value in these words before anything starts.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Pairs | Optional. Which systems to compare, comma-separated: `hcm_plansource_demographics`, `plansource_hcm_deductions`, `recordkeeper_ijoin`. Empty = every pair. |
| Include Employees | Optional. Person numbers, comma-separated, **no spaces**. Empty = everyone (the HCM and PlanSource pairs). |
| Plan IDs | Optional. Recordkeeper plan ids, comma-separated, no spaces. Empty = every plan (the recordkeeper ↔ iJoin pair). |
| As-of Date | Optional, YYYY-MM-DD. Payroll deductions: the plan year in effect on this date. Empty = today. Demographics are compared as they are now. |

## Stages
`validate` (params; the plan year to compare) → `extract` (the HCM's employees and PlanSource's
subscribers, read as a full export reads them; PlanSource's coverages of the plan year, read as a
Delta-off import reads them, and payroll's deductions; each plan in the recordkeeper and in iJoin, and
the participants of the plans both hold, as the Participant Sync reads them and as iJoin lists them) →
`transform` (each pair walked together in key
order; each employee asked what the export would send, each coverage mapped by the import's rules) →
`deliver` (the discrepancy file, counts per pair and kind) → `summary`.

## Statuses
- **Completed**: the comparison finished. Discrepancies are its findings, not errors: their count
  is in the Run Summary (per pair and kind) and a warning, each one in the discrepancy file.
- **Completed with Errors**: some Include Employees are not in the HCM (the error file says which).
- **Failed**: the comparison could not finish (a vendor or database outage after retries).

## First three things to check
1. The Run Summary: discrepancies per pair and kind.
2. The discrepancy file: each one with the field, both values (SSNs and birth dates masked), whether
   an integration can repair it (`repair`: the DAG to run for those people), and what to do if not.
3. A repairable discrepancy: tick it on the discrepancy page and press **Repair**: it runs the
   integration that owns it for exactly those people or plans (the HCM Demographic Export; the
   Deductions Import with Delta off; the iJoin Plan Sync or Participant Sync for those plans), and never
   waits on a paused schedule. The next reconciliation no longer lists them, or says why the repair
   could not.

## Re-running safely
Always safe: it only reads.

## Notifications and deadline
- **Who is told**: whoever the rules in the Airflow Variable `benefits_hub.notifications` name for this
  integration and the run's status (see `docs/notifications.md`).
- **Deadline**: a run not finished within **1 hour** of being queued raises *Deadline missed*.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronTriggerTimetable

from benefits_hub.deadlines import finish_within
from benefits_hub.operators.stages import PLANSOURCE_API_POOL, integration_default_args, integration_stages
from benefits_hub.params import (
    as_of_date_param,
    include_employees_param,
    integration_run_name_param,
    plan_ids_param,
    reconciliation_pairs_param,
)

INTEGRATION = "benefits_hub.reconciliation.integration:Reconciliation"

with DAG(
    dag_id="hub_reconciliation",
    dag_display_name="Hub Reconciliation (are the systems in step?)",
    description="Nightly comparison of the HCM, PlanSource, recordkeeper and iJoin end states",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 4 * * *", timezone="UTC"),
    # Nightly, after the deductions import and before the working day.
    deadline=finish_within(timedelta(minutes=60)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["reconciliation", "plansource", "hcm", "ijoin", "recordkeeper"],
    default_args=integration_default_args(),
    params={
        "integration_run_name": integration_run_name_param(),
        "pairs": reconciliation_pairs_param(),
        "as_of_date": as_of_date_param(),
        "include_employees": include_employees_param(),
        "plan_ids": plan_ids_param(),
    },
) as dag:
    validate, extract, transform, deliver, summary = integration_stages(
        INTEGRATION, vendor_pool=PLANSOURCE_API_POOL
    )

    validate >> extract >> transform >> deliver >> summary
