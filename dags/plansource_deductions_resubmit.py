"""
# PlanSource Deductions Import — Transaction Assistant

Corrects and re-imports the **error records** of one deductions import run, without re-running the
whole import. Only that run's rejected records are read (from its own source file, exactly as
PlanSource sent them), your corrections are applied, and they go through the same checks and the same
idempotent load as the import.

## Where to do it
In the **Activity Monitor**: open the import run (or any of its resubmissions), click **Go to Transaction
Assistant**. The page lists the error records still open, each with its problem in words; type the
corrected values (Premium, Pre-tax premium, Start date...), or dismiss a record with a reason, and
click **Resubmit**. The page checks each value with the import's own rules before anything starts, then
follows the resubmission to its Run Summary. You never need this DAG's trigger form.

## Params (for the REST API; the page fills them in)
| Param | What to enter |
|---|---|
| Integration Run Name | Optional. A name to find this run by; empty = name + date/time. |
| Integration Reference ID | The `integration_reference_id` of the import run, or of any of its resubmissions. |
| Corrections | Optional. For each error record (the error file's `record_key`, e.g. `E000123#COV-9`), the fields to correct, e.g. `{"E000123#COV-9": {"subscriber_premium": "12.50"}}`. Open records without a correction are retried as they are (after a cross-reference mapping was added, say). |
| Dismissals | Optional. Error record -> why it is not needed, e.g. `{"E000123#COV-9": "employee left, not needed"}`. Recorded with who and why; counted in the Run Summary. |

Correctable fields: plan payroll mapping code, premiums (employee, employer, pre-/post-tax), tax
treatment, coverage level, effective and termination dates, termination reason, benefit name.

## Corrections accumulate
A record loaded by a resubmission is fixed for good and never offered again; corrections typed earlier
stay with the records still open. Any run of the chain can be resubmitted; each offers only what is
still wrong, and the one that loads (or dismisses) the last record ends **Completed**. The import's page
in the Activity Monitor then says "all N error records corrected".

## Statuses
- **Completed**: every error record of the import is now loaded or dismissed.
- **Completed with Errors**: some records are still wrong; they are in this run's new error file.
  Correct them from this run's page (or the import's): both offer exactly the records still open.
- **Failed**: the reference id is unknown, nothing is left to resubmit, a correction names a record that
  is not open, or a corrected value breaks a rule (`failure_reason` says which record, field and why).

## First three things to check
1. The summary's `resubmission_root` (the import run) and counts (`records_dismissed` too).
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
    dag_display_name="PlanSource Deductions Transaction Assistant (correct and resubmit errors)",
    # Started only on a person's behalf (never on a schedule): it must never wait paused.
    is_paused_upon_creation=False,
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
        "dismissals": Param(
            None,
            type=["null", "object"],
            title="Dismissals",
            description=(
                'Optional. Error record -> why it is not needed, e.g. {"E000123#COV-9": "employee left"}. '
                "A dismissed record is not imported; who dismissed it and why are recorded."
            ),
        ),
    },
) as dag:
    validate, extract, transform, deliver, summary = integration_stages(INTEGRATION)

    validate >> extract >> transform >> deliver >> summary
