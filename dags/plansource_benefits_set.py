"""
# PlanSource benefits integration set

Runs the **HCM Demographic Export**, then the **PlanSource Deductions Import**, each with its own
params, as one process with **Abort on Failure**: if the export ends Completed with Errors or Failed,
the import does not run (deductions must never land on employees PlanSource has not received).

## Params (the trigger form)
Run it, or **Re-Run** a past run with the same params, from the **Activity Monitor → Run an Integration** form (`/activity-monitor/trigger/plansource_benefits_set`): it checks every value in these words before anything starts, and a refused value changes nothing. Airflow's own Trigger form works too, but it silently changes an out-of-range number and turns the integration on even when it refuses the values.

| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Export params | The export's own params as JSON, e.g. `{"delta": true, "lookback_days": 1}`. |
| Import params | The import's own params as JSON, e.g. `{"delta": true, "lookback_days": 1}`. |

## Statuses
- **Completed**: both members completed.
- **Failed**: a member stopped the set; the set's summary names it (`stopped_by`) and the members
  after it show "Not run". Each member's own Run Summary is in its `summary` task.

## First three things to check
1. The set's `summary`: `stopped_by` and each member's status.
2. The stopping member's Run Summary and error file (`export.summary` or `import.summary`).
3. That member's failing task log.

## Re-running safely
Both members are safe to re-run (no duplicate subscribers, deductions upserted). Fix what stopped the
set, then trigger the set again, or run the remaining member on its own.

**Never two at once.** While the set runs, a standalone export or import refuses at its `validate`
("A run of the integration set … is running … This run did nothing"), and while a standalone export or
import runs, the set's member refuses in the same words and stops the set. Run it again once the other
has ended.

## Notifications and deadline
- **Who is told**: each member notifies like its own integration: a rule for the HCM Demographic Export
  (`plansource_hcm_demographic_export`) hears about the export inside this set too, and a rule naming
  `plansource_benefits_set` hears about both members (see `docs/notifications.md`). The set's own
  summary sends nothing more: the member that stopped the set has already said why.
- **Deadline**: a set not finished within **3 hours** of being queued raises *Deadline missed* to the
  rules for `plansource_benefits_set` that listen for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, TaskGroup

from benefits_hub.deadlines import finish_within
from benefits_hub.operators.sets import IntegrationSetSummaryOperator
from benefits_hub.operators.stages import PLANSOURCE_API_POOL, integration_default_args, integration_stages
from benefits_hub.params import integration_run_name_param

# (task group, integration, the member's own DAG id: its state and staging)
MEMBERS = (
    ("export", "benefits_hub.demographics.export:DemographicExport", "plansource_hcm_demographic_export"),
    ("import", "benefits_hub.deductions.importer:DeductionsImport", "plansource_deductions_import"),
)

with DAG(
    dag_id="plansource_benefits_set",
    dag_display_name="PlanSource Integration Set: Demographic Export, then Deductions Import",
    # Started only on a person's behalf (never on a schedule): it must never wait paused.
    is_paused_upon_creation=False,
    description="Integration set: HCM Demographic Export, then PlanSource Deductions Import (Abort on Failure)",
    doc_md=__doc__,
    schedule=None,
    # The export's 45 minutes and the import's 2 hours, one after the other.
    deadline=finish_within(timedelta(hours=3)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["plansource", "integration-set"],
    default_args=integration_default_args(),
    params={
        "integration_run_name": integration_run_name_param(),
        "export": Param(
            {"delta": True, "lookback_days": 1},
            type="object",
            title="Export params",
            description="The HCM Demographic Export's params (delta, include_employees, lookback_days, qualify_delta).",
        ),
        "import": Param(
            {"delta": True, "lookback_days": 1},
            type="object",
            title="Import params",
            description=(
                "The Deductions Import's params (delta, include_employees, lookback_days, qualify_delta, "
                "deduction_start_date, plan_year_start_date)."
            ),
        ),
    },
) as dag:
    previous = None
    for group_id, integration, member_dag_id in MEMBERS:
        with TaskGroup(group_id) as member:
            validate, extract, transform, hold, deliver, summary = integration_stages(
                integration,
                vendor_pool=PLANSOURCE_API_POOL,
                hold=True,
                integration_id=member_dag_id,
                params_key=group_id,
            )
            validate >> extract >> transform >> hold >> deliver >> summary
        if previous is not None:
            previous >> member  # Abort on Failure: a failed member summary leaves the next upstream_failed
        previous = member
    summary = IntegrationSetSummaryOperator(task_id="summary", members=[m[0] for m in MEMBERS])
    previous >> summary
