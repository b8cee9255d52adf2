"""
# Recordkeeper → iJoin Plan Sync

Brings each plan's specifications, contacts, matching tiers and fund line-up from the recordkeeper to
iJoin, monthly and on demand. One task per plan (dynamic task mapping): a plan that fails validation
fails alone, with its reasons, and the others go on.

## Params (the trigger form)
Run it, or **Re-Run** a past run with the same params, from the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/ijoin_plan_sync`): it checks every value in these words before anything starts, and a refused value changes nothing. Airflow's own Trigger form works too, but it silently changes an out-of-range number and turns the integration on even when it refuses the values.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Plan IDs | Optional. Recordkeeper plan ids, comma-separated, no spaces. Empty = every plan. |
| Dry Run | On: send nothing to iJoin; the run's page shows each plan's preview (what would be sent, and whether a line-up change would leave a draft for review). Nobody is asked to review. |

## Statuses (per plan, in the Run Summary's `outcomes` and in iJoin's Activity Monitor)
- **Successful**: iJoin has the recordkeeper's plan data.
- **Successful with warnings**: the fund line-up changed on an **active** plan. iJoin keeps the active
  version and holds the change as a **draft**: a plan administrator approves it in Airflow (Required
  Actions, "iJoin Plan Draft Review"), which activates it; until then the enrollment site shows the
  old line-up. Do not activate it in iJoin by hand: the review would then find no draft.
  If the new line-up closes the fund iJoin keeps as the plan's **locked** default investment, iJoin
  could never activate it: the warning says so and what to change, and no review is requested.
- **Failed**: the plan cannot sync (no employer EIN, an open fund without a ticker, no default fund, or
  iJoin has no such plan); the reasons are in the summary, the error file and iJoin's activity log.
  Fix them in the recordkeeper and sync the plan again.

The run as a whole: **Successful** / **Successful with warnings** when every plan synced;
**Completed with Errors** (run marked failed) when some plans failed; **Failed** when the run could
not start (e.g. an unknown plan id).

Fields iJoin flags "do not override with recordkeeper data", and a default investment flagged "never
populate from recordkeeper", are never sent.

Each draft **version** gets exactly one `ijoin_plan_draft_review` run (run id
`review__<plan>__<version>`), where a person approves it (Airflow UI → Required Actions) before iJoin
activates exactly that version; this run does not wait for them. Re-running the sync asks nobody
twice; a changed draft is a new version with a review of its own, and the older review closes
itself as *Superseded* (approving it would activate nothing either).

The **Plan Summary** page (Airflow navigation) shows each plan's last Plan Sync and a waiting draft,
with **Sync plan now** to run this sync for one plan.

## First three things to check
1. The `summary` task: `outcomes` per plan, `warnings`, `drafts_created`, `error_files`.
2. The failing plan's reasons (error file; the `per_item` tasks of that plan's map index).
3. iJoin's activity log for the plan (`payload_url` points at exactly what was sent).

## Re-running safely
Always safe: a plan already in step is reported `unchanged`; a pending draft is replaced by the newest
recordkeeper line-up, never activated by the sync.

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
from benefits_hub.operators.reviews import draft_review_requests
from benefits_hub.operators.stages import IJOIN_API_POOL, fanned_out_stages, integration_default_args
from benefits_hub.params import dry_run_param, integration_run_name_param, plan_ids_param

INTEGRATION = "benefits_hub.ijoin.plan_sync:PlanSync"

with DAG(
    dag_id="ijoin_plan_sync",
    dag_display_name="iJoin Plan Sync (Recordkeeper to iJoin)",
    description="Recordkeeper plans, contacts and fund line-ups to iJoin (monthly, manual)",
    doc_md=__doc__,
    # Monthly, early on the 1st (the seed: at least monthly for all plans).
    schedule=CronTriggerTimetable("0 5 1 * *", timezone="UTC"),
    # Monthly, one task per plan.
    deadline=finish_within(timedelta(hours=2)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ijoin", "recordkeeper", "plan-sync"],
    default_args=integration_default_args(),
    params={
        "integration_run_name": integration_run_name_param(),
        "plan_ids": plan_ids_param(),
        "dry_run": dry_run_param(),
    },
) as dag:
    validate, per_plan, summary = fanned_out_stages(INTEGRATION, vendor_pool=IJOIN_API_POOL)

    # Each draft waits for its reviewer in a run of its own: this run never waits (DESIGN.md §5).
    drafts, request_reviews = draft_review_requests("ijoin_plan_sync")

    validate >> per_plan >> drafts >> request_reviews >> summary
