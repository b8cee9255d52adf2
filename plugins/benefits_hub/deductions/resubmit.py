"""Transaction Assistant: correct and re-import the error records of one deductions import run.

Given the ``integration_reference_id`` of an import run, or of any of its earlier resubmissions, it
takes the records of that import that are still open (not loaded by an earlier resubmission, not
dismissed) from the import's own source file (exactly what PlanSource sent), applies the corrections
typed so far and now (per record, per field), and imports them through the same validation and
idempotent upsert as the import. Records dismissed with a reason are not imported, and recorded as
dismissed. Records that are still wrong go to this run's own error file; the outcome goes into the
import's ledger (:mod:`benefits_hub.deductions.corrections`), so the next resubmission offers only what
is still wrong and the one that settles the last record ends Completed.
"""

from __future__ import annotations

import csv
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator

from benefits_hub.deductions.corrections import (
    CORRECTABLE_FIELDS,
    Ledger,
    check_corrections,
    check_dismissal,
    label,
    read_ledger,
    write_ledger,
)
from benefits_hub.deductions.importer import DeductionsImport
from benefits_hub.deductions.rules import deduction_codes, record_key
from benefits_hub.integration import StageRefused
from benefits_hub.models import RunSummary, StagedFile, StageResult
from benefits_hub.operators.stages import RUN_MANIFEST
from benefits_hub.params import ParamError, parse_params
from benefits_hub.staging import StagingArea

IMPORT_DAG_ID = "plansource_deductions_import"
RESUBMIT_DAG_ID = "plansource_deductions_resubmit"
RESUBMITTED_SOURCE = "source/resubmitted_coverages.pages.jsonl"
__all__ = ["CORRECTABLE_FIELDS", "IMPORT_DAG_ID", "RESUBMIT_DAG_ID", "DeductionsResubmit", "find_root"]


class ResubmitParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    integration_run_name: str | None = None
    integration_reference_id: str
    corrections: dict[str, dict[str, Any]] = {}
    dismissals: dict[str, str] = {}

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

    @field_validator("dismissals", mode="before")
    @classmethod
    def _dismissals(cls, value: Any) -> dict[str, str]:
        if value in (None, ""):
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str | None) for v in value.values()):
            raise ValueError('must map an error record ("E000123#COV-9") to the reason it is not needed')
        for key, reason in value.items():
            refused = check_dismissal(reason)
            if refused:
                raise ValueError(f"{key}: {refused}")
        return {key: str(reason).strip() for key, reason in value.items()}


def find_root(reference_id: str) -> tuple[StagingArea, dict[str, Any]] | None:
    """The import run (staging area and run manifest) that ``reference_id`` names: the import itself,
    an integration set whose import member ran under that id, or a resubmission of it."""
    area = StagingArea(IMPORT_DAG_ID, reference_id)
    manifest = area.read_json(RUN_MANIFEST)
    if manifest is not None:
        return area, manifest
    resubmission = StagingArea(RESUBMIT_DAG_ID, reference_id).read_json(RUN_MANIFEST)
    root_id = ((resubmission or {}).get("summary") or {}).get("resubmission_root")
    if not root_id:
        return None
    area = StagingArea(IMPORT_DAG_ID, root_id)
    manifest = area.read_json(RUN_MANIFEST)
    return (area, manifest) if manifest is not None else None


def read_error_rows(error_file: str) -> list[dict[str, str]]:
    """The rows of a staged error file (one run's error records: a few, never a million)."""
    from airflow.sdk import ObjectStoragePath

    with ObjectStoragePath(error_file).open("r", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


class DeductionsResubmit(DeductionsImport):
    integration_name = "PlanSource Deductions Import - Transaction Assistant"
    import_dag_id: ClassVar[str] = IMPORT_DAG_ID

    @property
    def resubmit_params(self) -> ResubmitParams:
        return parse_params(ResubmitParams, self.run.params)

    def _root(self) -> tuple[StagingArea, dict[str, Any]]:
        reference = self.resubmit_params.integration_reference_id
        found = find_root(reference)
        if found is None:
            raise StageRefused(
                f"Param 'integration_reference_id': no deductions import run or Transaction Assistant run "
                f"'{reference}' is on record. Copy the Integration Reference ID from the import's Run "
                "Summary, or open the Transaction Assistant from the run's page in the Activity Monitor."
            )
        return found

    def _open_keys(self, root: StagingArea, manifest: dict[str, Any]) -> tuple[list[str], Ledger]:
        ledger = read_ledger(root)
        keys = dict.fromkeys(r["record_key"] for r in read_error_rows(manifest["summary"]["error_files"][0]))
        return [key for key in keys if not ledger.settled(key)], ledger

    def validate(self) -> StageResult:
        params = self.resubmit_params
        root, manifest = self._root()
        summary = manifest["summary"]
        if not summary.get("error_files"):
            raise StageRefused(
                f"The import run '{root.run_id}' ended {summary['status']} with no error records: there "
                "is nothing to resubmit."
            )
        stages = manifest["stages"]
        if "extract" not in stages:
            raise StageRefused(
                "The import run has no source file (it failed before extraction): re-run the import."
            )
        open_keys, ledger = self._open_keys(root, manifest)
        if not open_keys:
            raise StageRefused(
                f"Every error record of the import run '{root.run_id}' is already corrected or dismissed: "
                "there is nothing left to resubmit."
            )
        still_open = set(open_keys)
        for param, keys in (("corrections", params.corrections), ("dismissals", params.dismissals)):
            for key in keys:
                if key in still_open:
                    continue
                if key in ledger.fixed:
                    why = f"was already corrected by run '{ledger.fixed[key].run_id}'"
                elif key in ledger.dismissed:
                    why = f"was already dismissed in run '{ledger.dismissed[key].run_id}'"
                else:
                    why = f"is not an error record of run '{root.run_id}'"
                raise StageRefused(f"Param '{param}': '{key}' {why}.")
        original_validate = stages["validate"]["details"]
        return StageResult(
            stage="validate",
            counters={"records_open_before": len(open_keys)},
            details={
                "plan_year_start": original_validate["plan_year_start"],
                "initial_import": False,
                "narrowed": True,
                "window": original_validate["window"],
                "original_run_id": root.run_id,
                "original_source": stages["extract"]["files"]["source"],
            },
        )

    def extract(self) -> StageResult:
        details = self.run.result("validate").details
        params = self.resubmit_params
        root, manifest = self._root()
        open_keys, ledger = self._open_keys(root, manifest)
        retry = set(open_keys) - set(params.dismissals)
        staging = self.run.staging
        assert staging is not None
        codes = deduction_codes()
        selected: list[dict[str, Any]] = []  # the error records of one run: a few, not a million
        refused: list[str] = []
        corrected = 0
        for page in StagingArea.read_records(StagedFile.model_validate(details["original_source"])):
            for coverage in page.get("payroll_coverages") or []:
                key = record_key(coverage)
                if key not in retry:
                    continue
                typed = params.corrections.get(key, {})
                # Values are checked against the record as PlanSource sent it plus earlier corrections.
                earlier = {**coverage, **ledger.corrections.get(key, {})}
                for field, reason in check_corrections(earlier, typed, codes).items():
                    refused.append(f"{key}: {label(field)}: {reason}")
                fields = {**ledger.corrections.get(key, {}), **typed}
                if fields:
                    coverage = {**coverage, **fields}
                    corrected += 1
                selected.append(coverage)
        if refused:
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise ParamError("corrections", refused[0] + more)
        with staging.records(RESUBMITTED_SOURCE) as source:
            source.write({"payroll_coverages": selected, "resubmission_of": details["original_run_id"]})
        self.run.log.info(
            "Resubmitting %d open error record(s) of run %s (%d corrected); %d dismissed",
            len(selected), details["original_run_id"], corrected, len(params.dismissals),
        )  # fmt: skip
        return StageResult(
            stage="extract",
            counters={
                "source_records": len(selected),
                "records_corrected": corrected,
                "records_dismissed": len(params.dismissals),
            },
            files={"source": source.manifest},
        )

    def build_summary(self, end: Any = None) -> tuple[RunSummary, list[str]]:
        summary, parts = super().build_summary(end)
        validate = self.run.results.get("validate")
        summary.resubmission_of = self.run.params.get("integration_reference_id") or None
        summary.resubmission_root = validate.details.get("original_run_id") if validate else None
        return summary, parts

    def after_summary(self, summary: RunSummary) -> None:
        """Record the outcome in the import's ledger. A resubmission moves no window and records no
        import day: it is a correction, not an import."""
        extract = self.run.results.get("extract")
        if extract is None:
            return  # refused before anything was selected: nothing happened to any record
        params = self.resubmit_params
        root, _manifest = self._root()
        retried = [record_key(c) for p in StagingArea.read_records(extract.files["source"])
                   for c in p.get("payroll_coverages") or []]  # fmt: skip
        still_wrong = {r["record_key"] for path in summary.error_files for r in read_error_rows(path)}
        ledger = read_ledger(root)
        ledger.record(
            self.run.run_id,
            retried=retried,
            still_wrong=still_wrong,
            corrections=params.corrections,
            dismissals=params.dismissals,
            user=self.run.triggered_by,
            delivered="deliver" in self.run.results,
        )
        write_ledger(root, ledger)
