"""
# iJoin Plan Repair (reconciliation discrepancies)

Syncs to iJoin exactly the plans a person selected on a **Hub Reconciliation** run's discrepancy page
(**Repair**): the iJoin Plan Sync's stages and rules for those plans (specifications, contacts, matching
tiers, fund line-up; never what iJoin says not to override). A line-up change on an active plan becomes
a draft in iJoin, and a plan administrator is asked to review it, as after any Plan Sync. The next
reconciliation shows the plans in step, or still listed with the reason this run gave.

It has no schedule and is never paused: a repair someone asked for never waits.

## Params (the trigger form)
Started by **Repair** on a reconciliation's discrepancy page (`/activity-monitor/runs/hub_reconciliation/<run>/discrepancies`), which fills in the params; the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/ijoin_plan_repair`) works too.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Plan IDs | The plans to repair, comma-separated, **no spaces**. Required. |
| Reconciliation Reference ID | The reconciliation run whose discrepancies are repaired (filled in by Repair). |

## Statuses
- **Successful**: every plan is in step with the recordkeeper.
- **Successful with warnings**: a line-up change left a draft, which waits for its review (Required
  Actions, "iJoin Plan Draft Review").
- **Completed with Errors**: some plans could not be synced (the Run Summary gives each plan's reason).
- **Failed**: the run could not finish (no plan named, a plan the recordkeeper does not have, an outage).

## First three things to check
1. The Run Summary: each plan's outcome and reason.
2. The plan's page (Plan Summary): its last sync and any draft waiting for review.
3. The `per_item.deliver` log of the plan (mapped tasks are named by plan).

## Re-running safely
Always safe: iJoin applies only what differs; the same draft again asks nobody twice.

## Notifications and deadline
- **Who is told**: whoever the rules in the Airflow Variable `benefits_hub.notifications` name for this
  integration and the run's status (see `docs/notifications.md`).
- **Deadline**: a run not finished within **30 minutes** of being queued raises *Deadline missed*.
"""

from __future__ import annotations

from airflow.sdk import DAG

from benefits_hub.operators.reviews import draft_review_requests
from benefits_hub.operators.stages import IJOIN_API_POOL, fanned_out_stages, on_behalf_dag_args
from benefits_hub.params import repair_params

INTEGRATION = "benefits_hub.reconciliation.repair:PlanRepair"

with DAG(
    dag_id="ijoin_plan_repair",
    dag_display_name="iJoin Plan Repair (reconciliation discrepancies)",
    description="The iJoin Plan Sync for the plans a reconciliation's Repair names",
    doc_md=__doc__,
    tags=["ijoin", "recordkeeper", "plan-sync", "reconciliation"],
    params=repair_params("plan_ids"),
    # Started only on a person's behalf (Repair): never paused, so it never waits.
    schedule=None,
    **on_behalf_dag_args(),
) as dag:
    validate, per_plan, summary = fanned_out_stages(INTEGRATION, vendor_pool=IJOIN_API_POOL)

    # A draft the repair leaves is reviewed as any Plan Sync's is, in a run of its own.
    drafts, request_reviews = draft_review_requests("ijoin_plan_repair")

    validate >> per_plan >> drafts >> request_reviews >> summary
