"""
# PlanSource Demographic Repair (reconciliation discrepancies)

Sends PlanSource exactly the employees a person selected on a **Hub Reconciliation** run's discrepancy
page (**Repair**): the HCM Demographic Export's stages and rules, narrowed to those employees, every
field compared whatever changed when. The next reconciliation shows them gone, or still there with
the reason this run's error file gives.

It has no schedule and is never paused: a repair someone asked for never waits.

## Params (the trigger form)
Started by **Repair** on a reconciliation's discrepancy page (`/activity-monitor/runs/hub_reconciliation/<run>/discrepancies`), which fills in the params; the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/plansource_demographic_repair`) works too.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Include Employees | The person numbers to repair, comma-separated, **no spaces**. Required. |
| Reconciliation Reference ID | The reconciliation run whose discrepancies are repaired (filled in by Repair). |

## Statuses
- **Completed**: every named employee was sent (or was already right).
- **Completed with Errors**: some could not be sent (see the error file: the same reasons as the
  export's); the others were.
- **Failed**: the run could not finish (an empty Include Employees, a vendor outage after retries).

## First three things to check
1. The Run Summary: created, updated, terminations, rehires, errors.
2. The error file: one row per employee that could not be sent, with what to fix.
3. The `deliver` log: PlanSource's answer per batch.

## Re-running safely
Always safe: only fields that differ from what PlanSource holds are sent; creates of employees it
already has are reported, not duplicated.

## Notifications and deadline
- **Who is told**: whoever the rules in the Airflow Variable `benefits_hub.notifications` name for this
  integration and the run's status (see `docs/notifications.md`).
- **Deadline**: a run not finished within **30 minutes** of being queued raises *Deadline missed*.
"""

from __future__ import annotations

from airflow.sdk import DAG

from benefits_hub.operators.stages import PLANSOURCE_API_POOL, integration_stages, on_behalf_dag_args
from benefits_hub.params import repair_params

INTEGRATION = "benefits_hub.reconciliation.repair:DemographicRepair"

with DAG(
    dag_id="plansource_demographic_repair",
    dag_display_name="PlanSource Demographic Repair (reconciliation discrepancies)",
    description="The HCM Demographic Export for the employees a reconciliation's Repair names",
    doc_md=__doc__,
    tags=["plansource", "export", "demographics", "reconciliation"],
    params=repair_params(),
    # Started only on a person's behalf (Repair): never paused, so it never waits.
    schedule=None,
    **on_behalf_dag_args(),
) as dag:
    validate, extract, transform, deliver, summary = integration_stages(
        INTEGRATION, vendor_pool=PLANSOURCE_API_POOL
    )

    validate >> extract >> transform >> deliver >> summary
