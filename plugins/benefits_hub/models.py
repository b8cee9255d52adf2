"""Pydantic models at the hub's boundaries: stage results, the Run Summary, error rows.

Everything here is small and JSON-serialisable: it travels through XCom. Bulk data never does;
it lives in the staging area and XCom carries only its manifest (:class:`StagedFile`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class RunStatus(StrEnum):
    """Run statuses in the vendors' own vocabulary (the seeds' Activity Monitor)."""

    IN_PROGRESS = "In-Progress"
    COMPLETED = "Completed"
    COMPLETED_WITH_ERRORS = "Completed with Errors"
    FAILED = "Failed"
    SUCCESSFUL = "Successful"
    SUCCESSFUL_WITH_WARNINGS = "Successful with warnings"

    @property
    def fails_the_run(self) -> bool:
        # "Completed with Errors ... is treated as failed": an integration set must stop on it.
        return self in (RunStatus.COMPLETED_WITH_ERRORS, RunStatus.FAILED)


class IntegrationType(StrEnum):
    IMPORT = "Import"
    EXPORT = "Export"
    NONE = "None"


class StagedFile(BaseModel):
    """Manifest of one file in the staging area: where it is and what it holds, never its rows."""

    model_config = ConfigDict(frozen=True)

    path: str
    rows: int
    sha256: str
    # The record field the rows were checked to ascend by as they were written (a merge join may rely
    # on it), or None: no order known.
    ordered_by: str | None = None


class StageResult(BaseModel):
    """What a stage hands on through XCom: counters, manifests of staged files, warnings, small facts."""

    stage: str
    counters: dict[str, int] = Field(default_factory=dict)
    files: dict[str, StagedFile] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def combine(cls, stage: str, results: list[StageResult]) -> StageResult:
        """One result for a stage that fanned out (dynamic task mapping): counters summed, files
        kept per item (``role#index``), warnings in order, each item's details under ``items``."""
        combined = cls(stage=stage, details={"items": []})
        for index, result in enumerate(results):
            for name, value in result.counters.items():
                combined.counters[name] = combined.counters.get(name, 0) + value
            for role, staged in result.files.items():
                combined.files[f"{role}#{index}"] = staged
            combined.warnings.extend(result.warnings)
            combined.details["items"].append(result.details)
        return combined


class ErrorRow(BaseModel):
    """One rejected record, explained for a payroll clerk. ``value`` is already masked."""

    record_key: str
    field: str
    value: str = ""
    rule: str
    reason: str
    stage: str = ""

    CSV_COLUMNS: ClassVar[tuple[str, ...]] = ("record_key", "field", "value", "rule", "reason", "stage")


class RunSummary(BaseModel):
    """The seed's Run Summary: the ``summary`` task's return value (DESIGN.md section 2)."""

    integration_run_name: str
    process_name: str | None = None
    integration_name: str
    integration_reference_id: str
    user: str
    integration_type: IntegrationType
    start_date: str
    end_date: str
    status: RunStatus
    records_processed: int = 0
    records_created: int = 0
    records_updated: int = 0
    records_skipped: int = 0
    errors: int = 0
    warnings: list[str] = Field(default_factory=list)
    employees_processed: int = 0
    source_files: list[str] = Field(default_factory=list)
    output_file: str | None = None
    output_files: list[str] = Field(default_factory=list)  # when a run delivered more than one file
    error_files: list[str] = Field(default_factory=list)
    failure_reason: str | None = None
    resubmission_of: str | None = None  # Transaction Assistant: the reference id it was given
    resubmission_root: str | None = None  # ... and the import run whose error records it corrects
    outcomes: list[dict[str, Any]] = Field(default_factory=list)  # per plan, for syncs that fan out
    window_start: str | None = None
    window_end: str | None = None
    extra_counters: dict[str, int] = Field(default_factory=dict)
    dry_run: bool = False  # nothing was delivered: the output is a preview of what would have been

    ONLY_WHEN_SET: ClassVar[tuple[str, ...]] = ("resubmission_of", "resubmission_root", "output_files")

    def as_xcom(self) -> dict[str, Any]:
        """Flat dict for XCom; per-integration counters sit beside the standard fields."""
        flat = self.model_dump(mode="json", exclude={"extra_counters"})
        for key in self.ONLY_WHEN_SET:
            if flat.get(key) in (None, []):
                del flat[key]  # a Transaction Assistant field: not "—" on every other run's summary
        flat.update(self.extra_counters)
        return flat
