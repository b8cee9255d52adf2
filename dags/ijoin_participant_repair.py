"""
# iJoin Participant Repair (reconciliation discrepancies)

Syncs to iJoin the participants of exactly the plans a person selected on a **Hub Reconciliation** run's
discrepancy page (**Repair**): the iJoin Participant Sync's stages and rules for those plans (census,
salary, pay frequency, balances, allocations that add up to 100%, contribution rates). iJoin upserts
each participant and leaves alone those already right. The next reconciliation shows them in step, or
still listed with the reason this run gave.

It has no schedule and is never paused: a repair someone asked for never waits.

## Params (the trigger form)
Started by **Repair** on a reconciliation's discrepancy page (`/activity-monitor/runs/hub_reconciliation/<run>/discrepancies`), which fills in the params; the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/ijoin_participant_repair`) works too.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Plan IDs | The plans whose participants to repair, comma-separated, **no spaces**. Required. |
| Reconciliation Reference ID | The reconciliation run whose discrepancies are repaired (filled in by Repair). |

## Statuses
- **Successful**: every participant of those plans is in step.
- **Successful with warnings**: some participants synced with warnings (each with its reason on the
  plan's page), e.g. allocations that do not add up, which are never sent.
- **Completed with Errors**: some plans or participants could not be synced (see the error file).
- **Failed**: the run could not finish (no plan named, a plan the recordkeeper does not have, an outage).

## First three things to check
1. The Run Summary: each plan's outcome; created, updated, unchanged participants.
2. The plan's page (Plan Summary): each participant synced with warnings, and why.
3. The `per_item.deliver` log of the plan (mapped tasks are named by plan).

## Re-running safely
Always safe: participants are upserted on (plan, participant); those already right are left alone.

## Notifications and deadline
- **Who is told**: whoever the rules in the Airflow Variable `benefits_hub.notifications` name for this
  integration and the run's status (see `docs/notifications.md`).
- **Deadline**: a run not finished within **30 minutes** of being queued raises *Deadline missed*.
"""

from __future__ import annotations

from airflow.sdk import DAG

from benefits_hub.operators.stages import IJOIN_API_POOL, fanned_out_stages, on_behalf_dag_args
from benefits_hub.params import repair_params

INTEGRATION = "benefits_hub.reconciliation.repair:ParticipantRepair"

with DAG(
    dag_id="ijoin_participant_repair",
    dag_display_name="iJoin Participant Repair (reconciliation discrepancies)",
    description="The iJoin Participant Sync for the plans a reconciliation's Repair names",
    doc_md=__doc__,
    tags=["ijoin", "recordkeeper", "participant-sync", "reconciliation"],
    params=repair_params("plan_ids"),
    # Started only on a person's behalf (Repair): never paused, so it never waits.
    schedule=None,
    **on_behalf_dag_args(),
) as dag:
    validate, per_plan, summary = fanned_out_stages(INTEGRATION, vendor_pool=IJOIN_API_POOL)

    validate >> per_plan >> summary
