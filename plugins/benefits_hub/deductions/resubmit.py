"""Transaction Assistant: correct and re-import the error records of one deductions import run.

Given a run's ``integration_reference_id``, it takes that run's error records from its own source
file (exactly what PlanSource sent), applies the corrections a person entered (per record, per field),
and imports only those, through the same validation and idempotent upsert as the import. Records that
are still wrong go to this run's own error file; the original run is named in the summary.
"""

from __future__ import annotations

import csv
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator

from benefits_hub.deductions.importer import DeductionsImport
from benefits_hub.deductions.rules import record_key
from benefits_hub.integration import StageRefused
from benefits_hub.models import RunSummary, StagedFile, StageResult
from benefits_hub.operators.stages import RUN_MANIFEST
from benefits_hub.params import parse_params
from benefits_hub.staging import StagingArea

IMPORT_DAG_ID = "plansource_deductions_import"
# What a clerk may correct; identity (record id, employee number) and bookkeeping may not change.
CORRECTABLE_FIELDS = frozenset(
    {
        "plan_payroll_mapping_code", "subscriber_premium", "org_premium", "subscriber_pretax_premium",
        "subscriber_posttax_premium", "tax_treatment", "coverage_level", "original_effective_date",
        "change_effective_date", "termination_date", "termination_reason", "benefit_name",
    }
)  # fmt: skip


class ResubmitParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    integration_run_name: str | None = None
    integration_reference_id: str
    corrections: dict[str, dict[str, Any]] = {}

    @field_validator("integration_reference_id", mode="before")
    @classmethod
    def _reference(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("is required: the Integration Reference ID of the import run to correct")
        return value.strip()

    @field_validator("corrections", mode="before")
    @classmethod
    def _corrections(cls, value: Any) -> dict[str, dict[str, Any]]:
        if value in (None, ""):
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise ValueError('must map an error record ("E000123#COV-9") to the fields to correct')
        for key, fields in value.items():
            wrong = sorted(set(fields) - CORRECTABLE_FIELDS)
            if wrong:
                raise ValueError(f"{key}: field '{wrong[0]}' cannot be corrected here")
        return value


class DeductionsResubmit(DeductionsImport):
    integration_name = "PlanSource Deductions Import - Transaction Assistant"
    import_dag_id: ClassVar[str] = IMPORT_DAG_ID

    @property
    def resubmit_params(self) -> ResubmitParams:
        return parse_params(ResubmitParams, self.run.params)

    def _original(self) -> StagingArea:
        return StagingArea(self.import_dag_id, self.resubmit_params.integration_reference_id)

    def validate(self) -> StageResult:
        params = self.resubmit_params
        manifest = self._original().read_json(RUN_MANIFEST)
        if manifest is None:
            raise StageRefused(
                f"Param 'integration_reference_id': no deductions import run "
                f"'{params.integration_reference_id}' has a Run Summary. Copy the reference id from the "
                "import's Run Summary."
            )
        summary = manifest["summary"]
        if not summary.get("error_files"):
            raise StageRefused(
                f"The import run '{params.integration_reference_id}' ended {summary['status']} with no error "
                "records: there is nothing to resubmit."
            )
        stages = manifest["stages"]
        if "extract" not in stages:
            raise StageRefused(
                "The import run has no source file (it failed before extraction): re-run the import."
            )
        error_keys = self._error_keys(summary["error_files"][0])
        unknown = sorted(set(params.corrections) - error_keys)
        if unknown:
            raise StageRefused(
                f"Param 'corrections': '{unknown[0]}' is not an error record of run "
                f"'{params.integration_reference_id}'."
            )
        original_validate = stages["validate"]["details"]
        return StageResult(
            stage="validate",
            details={
                "plan_year_start": original_validate["plan_year_start"],
                "initial_import": False,
                "narrowed": True,
                "window": original_validate["window"],
                "original_run_id": params.integration_reference_id,
                "original_error_file": summary["error_files"][0],
                "original_source": stages["extract"]["files"]["source"],
            },
        )

    @staticmethod
    def _error_keys(error_file: str) -> set[str]:
        from airflow.sdk import ObjectStoragePath

        with ObjectStoragePath(error_file).open("r", encoding="utf-8", newline="") as handle:
            return {row["record_key"] for row in csv.DictReader(handle)}

    def extract(self) -> StageResult:
        details = self.run.result("validate").details
        corrections = self.resubmit_params.corrections
        wanted = self._error_keys(details["original_error_file"])
        staging = self.run.staging
        assert staging is not None
        selected: list[dict[str, Any]] = []  # the error records of one run: a few, not a million
        corrected = 0
        for page in StagingArea.read_records(StagedFile.model_validate(details["original_source"])):
            for coverage in page.get("payroll_coverages") or []:
                key = record_key(coverage)
                if key in wanted:
                    if key in corrections:
                        coverage = {**coverage, **corrections[key]}
                        corrected += 1
                    selected.append(coverage)
        with staging.records("source/resubmitted_coverages.pages.jsonl") as source:
            source.write({"payroll_coverages": selected, "resubmission_of": details["original_run_id"]})
        self.run.log.info(
            "Resubmitting %d error record(s) of run %s, %d corrected",
            len(selected),
            details["original_run_id"],
            corrected,
        )
        return StageResult(
            stage="extract",
            counters={"source_records": len(selected), "records_corrected": corrected},
            files={"source": source.manifest},
        )

    def build_summary(self, end: Any = None) -> tuple[RunSummary, list[str]]:
        summary, parts = super().build_summary(end)
        validate = self.run.results.get("validate")
        summary.resubmission_of = self.run.params.get("integration_reference_id") or (
            validate.details.get("original_run_id") if validate else None
        )
        return summary, parts

    def after_summary(self, summary: RunSummary) -> None:
        """A resubmission moves no window and records no import day: it is a correction, not an import."""
