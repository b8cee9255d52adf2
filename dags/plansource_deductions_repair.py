"""
# PlanSource Deductions Repair (reconciliation discrepancies)

Loads into payroll exactly the employees a person selected on a **Hub Reconciliation** run's discrepancy
page (**Repair**): the Deductions Import's stages and rules with Delta off, narrowed to those employees,
for the plan year the import last loaded. It runs as the import (its plan year, its staging area), so
each deduction is upserted exactly as the nightly import would. The next reconciliation shows them gone,
or still there with the reason this run's error file gives.

It has no schedule and is never paused: a repair someone asked for never waits.

## Params (the trigger form)
Started by **Repair** on a reconciliation's discrepancy page (`/activity-monitor/runs/hub_reconciliation/<run>/discrepancies`), which fills in the params; the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/plansource_deductions_repair`) works too.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Include Employees | The person numbers to repair, comma-separated, **no spaces**. Required. |
| Reconciliation Reference ID | The reconciliation run whose discrepancies are repaired (filled in by Repair). |

## Statuses
- **Completed**: every coverage of the named employees is in payroll as PlanSource holds it.
- **Completed with Errors**: some coverages could not be loaded (see the error file: the import's
  reasons); the others were.
- **Failed**: the run could not finish (an empty Include Employees, no plan year imported yet, a vendor
  or database outage after retries).

## First three things to check
1. The Run Summary: created, updated, skipped (already right), errors.
2. The error file: one row per coverage that could not be loaded, with what to fix.
3. The `deliver` log: the chunks written to payroll.

## Re-running safely
Always safe: deductions are upserted on (person number, deduction code, effective date); rows already
right are left alone. A repair never moves the nightly import's window.

## Notifications and deadline
- **Who is told**: whoever the rules in the Airflow Variable `benefits_hub.notifications` name for this
  integration and the run's status (see `docs/notifications.md`).
- **Deadline**: a run not finished within **30 minutes** of being queued raises *Deadline missed*.
"""

from __future__ import annotations

from airflow.sdk import DAG

from benefits_hub.operators.stages import PLANSOURCE_API_POOL, integration_stages, on_behalf_dag_args
from benefits_hub.params import repair_params

INTEGRATION = "benefits_hub.reconciliation.repair:DeductionsRepair"

with DAG(
    dag_id="plansource_deductions_repair",
    dag_display_name="PlanSource Deductions Repair (reconciliation discrepancies)",
    description="The Deductions Import (Delta off) for the employees a reconciliation's Repair names",
    doc_md=__doc__,
    tags=["plansource", "import", "deductions", "reconciliation"],
    params=repair_params(),
    # Started only on a person's behalf (Repair): never paused, so it never waits.
    schedule=None,
    **on_behalf_dag_args(),
) as dag:
    # Run as the import itself: its plan year and window state, its staging area.
    validate, extract, transform, deliver, summary = integration_stages(
        INTEGRATION, vendor_pool=PLANSOURCE_API_POOL, integration_id="plansource_deductions_import"
    )

    validate >> extract >> transform >> deliver >> summary
