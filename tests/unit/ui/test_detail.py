"""A run's detail: the files its summary lists, task log links, the Transaction Assistant offer."""

from __future__ import annotations

from typing import Any

from benefits_hub.ui.activity import RunFacts, run_row
from benefits_hub.ui.detail import (
    TaskFacts,
    file_for,
    resubmit_offer,
    run_detail,
    summary_files,
    summary_items,
)

IMPORT = "plansource_deductions_import"
STAGED = "file:///hub/staging/plansource_deductions_import/manual__1"


def import_summary(**fields: Any) -> dict[str, Any]:
    return {
        "integration_run_name": "Import 1",
        "integration_name": "PlanSource Deductions Import",
        "integration_reference_id": "manual__1",
        "status": "Completed with Errors",
        "errors": 4,
        "warnings": ["Run the export first (SSN 123-45-6789 seen)"],
        "source_files": [f"{STAGED}/source/payroll_coverages.pages.jsonl"],
        "output_file": f"{STAGED}/output/loaded_deductions.csv",
        "error_files": [f"{STAGED}/error_file.csv"],
        "failure_reason": None,
        "test_employees_skipped": 1,
        **fields,
    }


def test_files_are_those_the_summary_lists_by_kind_and_position() -> None:
    set_summary = {
        "status": "Failed",
        "members": [{"member": "export", "error_files": ["file:///s/export/error_file.csv"]}],
        "error_files": [],
    }
    assert summary_files(set_summary)["errors"] == ["file:///s/export/error_file.csv"]
    summary = import_summary()
    assert file_for(summary, "errors", 0) == f"{STAGED}/error_file.csv"
    assert file_for(summary, "output", 0) == f"{STAGED}/output/loaded_deductions.csv"
    assert file_for(summary, "errors", 1) is None
    assert file_for(summary, "errors", -1) is None
    assert file_for(summary, "../../etc/passwd", 0) is None
    assert file_for(None, "source", 0) is None


def test_resubmit_is_offered_for_an_import_or_a_sets_import_with_errors_only() -> None:
    offer = resubmit_offer(IMPORT, "manual__1", IMPORT, import_summary())
    assert offer is not None and offer.reference_id == "manual__1" and offer.error_records == 4
    assert offer.post_path == "/activity-monitor/api/runs/plansource_deductions_import/manual__1/resubmit"
    member = import_summary(process_name="plansource_benefits_set")
    assert resubmit_offer("plansource_benefits_set", "manual__1", IMPORT, member) is not None
    # No error file, no import summary, or another DAG's run that shares the run id: no offer.
    assert resubmit_offer(IMPORT, "manual__1", IMPORT, import_summary(error_files=[])) is None
    assert resubmit_offer(IMPORT, "manual__1", IMPORT, None) is None
    assert resubmit_offer("plansource_hcm_demographic_export", "manual__1", IMPORT, import_summary()) is None


def test_run_detail_masks_free_text_and_links_every_task_log() -> None:
    facts = RunFacts(dag_id=IMPORT, run_id="manual__1", state="failed", summary=import_summary())
    tasks = [TaskFacts("validate", -1, "success", 1), TaskFacts("per_item.extract", 2, "failed", 3)]
    detail = run_detail(run_row(facts, "Import"), "manual__1", facts.summary, tasks, IMPORT, facts.summary)
    assert detail.warnings == ["Run the export first (SSN ***-**-6789 seen)"]
    assert [f.kind for f in detail.files] == ["source", "output", "errors"]
    assert detail.files[2].download_path.endswith(
        "/runs/plansource_deductions_import/manual__1/files/errors/0"
    )
    assert detail.files[2].name == "error records (error_file.csv)"
    assert detail.tasks[0].log_path == "/dags/plansource_deductions_import/runs/manual__1/tasks/validate"
    assert detail.tasks[1].log_path.endswith("/tasks/per_item.extract/mapped/2")
    assert detail.resubmit is not None


def test_summary_items_put_the_standard_fields_first() -> None:
    keys = [key for key, _ in summary_items(import_summary())]
    assert keys[:3] == ["integration_run_name", "integration_name", "integration_reference_id"]
    assert keys[-1] == "test_employees_skipped"


def test_files_are_named_by_what_they_are() -> None:
    from benefits_hub.ui.detail import file_title

    run = "file:///s/ijoin_participant_sync/manual__1"
    assert (
        file_title(f"{run}/plans/P0004/participants.jsonl")
        == "plan P0004 participants read from the recordkeeper"
    )
    assert file_title(f"{run}/plans/P0004/payload.jsonl") == "plan P0004 payload sent to iJoin"
    assert file_title(f"{run}/census_20260101.csv") == "census_20260101.csv"
