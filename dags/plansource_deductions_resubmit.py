"""
# PlanSource Deductions Import — Transaction Assistant

Corrects and re-imports the **error records** of one deductions import run, without re-running the
whole import. Only that run's rejected records are read (from its own source file, exactly as
PlanSource sent them), your corrections are applied, and they go through the same checks and the same
idempotent load as the import.

## Params (the trigger form)
| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Integration Reference ID | The `integration_reference_id` from the failed import's Run Summary. |
| Corrections | Optional. For each error record (the error file's `record_key`, e.g. `E000123#COV-9`), the fields to correct, e.g. `{"E000123#COV-9": {"subscriber_premium": "12.50"}}`. Records without a correction are simply retried (after you fixed a cross-reference table, say). |

Correctable fields: plan payroll mapping code, premiums (employee, employer, pre-/post-tax), tax
treatment, coverage level, effective and termination dates, termination reason, benefit name.

## Statuses
- **Completed**: every error record of the original run is now loaded.
- **Completed with Errors**: some records are still wrong; they are in this run's new error file.
  Correct them and resubmit this run's reference id, or the original's.
- **Failed**: the reference id is unknown, the run had no errors, or a correction names a record that
  was not in error (`failure_reason` says which).

## First three things to check
1. The summary's `resubmission_of` (the original run) and counts.
2. The new error file: what is still wrong and why.
3. The `validate` log if the run was refused: it names the param and the record.

## Re-running safely
Always safe: loads are upserts on (person number, deduction code, effective date); a record already
loaded is left unchanged.

## Notifications and deadline
- **Who is told**: whoever the rules in the Airflow Variable `benefits_hub.notifications` name for this
  integration and the run's status (e-mail and/or webhook; see `docs/notifications.md`). The message
  says what failed, how many records, the error file, and links to this run.
- **Deadline**: a run not finished within **30 minutes** of being queued raises *Deadline missed* to the
  rules that listen for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from benefits_hub.deadlines import finish_within
from benefits_hub.operators.stages import integration_default_args, integration_stages
from benefits_hub.params import integration_run_name_param

INTEGRATION = "benefits_hub.deductions.resubmit:DeductionsResubmit"

with DAG(
    dag_id="plansource_deductions_resubmit",
    description="Transaction Assistant: correct and re-import a deductions run's error records",
    doc_md=__doc__,
    schedule=None,
    # Only one run's error records: a short job.
    deadline=finish_within(timedelta(minutes=30)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["plansource", "import", "deductions", "transaction-assistant"],
    default_args=integration_default_args(retries=2, max_retry_delay=timedelta(minutes=10)),
    params={
        "integration_run_name": integration_run_name_param(),
        "integration_reference_id": Param(
            None,
            type=["null", "string"],
            title="Integration Reference ID",
            description="The integration_reference_id of the deductions import run whose error records to correct.",
        ),
        "corrections": Param(
            None,
            type=["null", "object"],
            title="Corrections",
            description=(
                'Optional. Error record -> fields to correct, e.g. {"E000123#COV-9": {"subscriber_premium": "12.50"}}. '
                "Records not listed are retried as they are."
            ),
        ),
    },
) as dag:
    validate, extract, transform, deliver, summary = integration_stages(INTEGRATION)

    validate >> extract >> transform >> deliver >> summary
