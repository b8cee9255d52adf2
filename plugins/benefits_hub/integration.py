"""The shape every integration takes: five stages over one run's context.

An integration subclasses :class:`Integration` and implements ``validate``, ``extract``, ``transform``
and ``deliver``; each returns a :class:`StageResult` (counters, staged-file manifests, warnings).
The shared operators in :mod:`benefits_hub.operators.stages` run them as Airflow tasks, and the
``summary`` stage is the same for all: :meth:`Integration.build_summary` turns the stage results into
the Run Summary and its status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from benefits_hub.models import (
    ErrorRow,
    IntegrationType,
    RunStatus,
    RunSummary,
    StagedFile,
    StageResult,
)
from benefits_hub.staging import ErrorWriter, StagingArea
from benefits_hub.window import RunWindow, next_watermark, parse_instant

# The per-DAG state key of the watermark (see benefits_hub.window).
WATERMARK_KEY = "watermark"

STAGES: tuple[str, ...] = ("validate", "extract", "transform", "deliver")
log = logging.getLogger(__name__)


class StageRefused(Exception):
    """The run cannot go on, for a reason a person must act on (bad param, missing prerequisite).

    Retrying would not help: the operator fails the task without retries.
    """


@dataclass
class RunContext:
    """What a stage knows about its run; built from Airflow's task context by the operator."""

    dag_id: str
    run_id: str
    run_type: str  # manual | scheduled | asset_triggered | backfill
    params: dict[str, Any]
    run_start: datetime
    triggered_by: str
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    staging: StagingArea | None = None
    results: dict[str, StageResult] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    # Reads/writes the hub's small per-DAG state (Airflow Variables in a run; a dict in unit tests).
    state_get: Callable[[str], Any] = lambda key: None
    state_set: Callable[[str, Any], None] = lambda key, value: None
    # The item this task handles when a stage fans out (dynamic task mapping), e.g. a plan id.
    item: str | None = None
    # The circuit breaker's verdict (benefits_hub.operators.hold), for the summary: held, approved...
    hold: dict[str, Any] | None = None
    # The task's logger, so what a stage says lands in its Airflow task log.
    log: Any = field(default_factory=lambda: logging.getLogger("benefits_hub.integration"))

    @property
    def is_scheduled(self) -> bool:
        return self.run_type == "scheduled"

    def result(self, stage: str) -> StageResult:
        if stage not in self.results:
            raise StageRefused(f"The {stage} stage has no result for this run; it did not finish.")
        return self.results[stage]

    @contextmanager
    def error_file(self, stage: str) -> Iterator[ErrorWriter]:
        assert self.staging is not None
        with self.staging.errors(f"errors/{stage}.csv") as writer:
            yield writer


DRY_RUN_WARNING = (
    "Dry run: nothing was sent and the window did not move. The preview on this run's page lists what "
    "a real run would send; run again with Dry Run off to send it."
)


class Integration:
    """Base of the four integrations. Subclasses set the class attributes and the four stages."""

    integration_name: ClassVar[str]
    integration_type: ClassVar[IntegrationType] = IntegrationType.NONE
    #: counters summed into the Run Summary's standard fields
    standard_counters: ClassVar[tuple[str, ...]] = (
        "records_processed", "records_created", "records_updated", "records_skipped",
        "employees_processed",
    )  # fmt: skip
    success_status: ClassVar[RunStatus] = RunStatus.COMPLETED

    def __init__(self, run: RunContext) -> None:
        self.run = run

    # -- the stages -------------------------------------------------------------------------------
    def validate(self) -> StageResult:
        raise NotImplementedError

    def extract(self) -> StageResult:
        raise NotImplementedError

    def transform(self) -> StageResult:
        raise NotImplementedError

    def deliver(self) -> StageResult:
        raise NotImplementedError

    def after_summary(self, summary: RunSummary) -> None:
        """Hook for state that moves only with a finished run (e.g. the delta watermark)."""

    def change_set(self) -> Any:
        """What deliver is about to send, measured for the circuit breaker (a
        :class:`benefits_hub.breaker.ChangeSet`), once transform has finished; ``None``: this
        integration is never held."""
        return None

    # -- the window (benefits_hub.window: one model, one serialised form, one next-watermark rule) --
    def watermark(self) -> datetime | None:
        """The end of the window of the last successful full-scope run, ``None`` before any."""
        return parse_instant(self.run.state_get(WATERMARK_KEY))

    @property
    def is_dry_run(self) -> bool:
        """Triggered with Dry Run on: deliver writes a preview and sends nothing; no state moves."""
        return self.run.params.get("dry_run") is True

    def preview_result(self, counters: dict[str, int], path: Any, rows: int) -> StageResult:
        """A Dry Run's deliver result: its counts and its preview file (the run page's Preview)."""
        return StageResult(
            stage="deliver",
            counters=counters,
            files={"output#preview": StagedFile(path=str(path), rows=rows, sha256="")},
            details={"dry_run": True},
        )

    def advance_watermark(self) -> None:
        """After a run that did not fail: move the watermark to its window's end, if it may. A dry run
        delivered nothing, so the next real run must still cover its window."""
        if self.is_dry_run:
            return
        validate = self.run.results.get("validate")
        if validate is None or not validate.details.get("window"):
            return
        window = RunWindow.from_details(validate.details["window"])
        narrowed = bool(validate.details.get("narrowed"))
        moved = next_watermark(window, narrowed=narrowed, watermark=self.watermark())
        if moved is not None:
            self.run.state_set(WATERMARK_KEY, moved.isoformat())

    # -- the summary ------------------------------------------------------------------------------
    def run_name(self) -> str:
        name = (self.run.params.get("integration_run_name") or "").strip()
        if name:
            return name
        return f"{self.integration_name} {self.run.run_start.strftime('%Y-%m-%d %H:%M:%S')}"

    def status_for(self, errors: int, failed: bool, warnings: list[str]) -> RunStatus:
        if failed:
            return RunStatus.FAILED
        if errors:
            return RunStatus.COMPLETED_WITH_ERRORS
        return self.success_status

    def build_summary(self, end: datetime | None = None) -> tuple[RunSummary, list[str]]:
        """The Run Summary from whatever stages finished; also returns the error parts to merge."""
        counters: dict[str, int] = {}
        warnings: list[str] = []
        source_files: list[str] = []
        outputs: list[str] = []
        error_parts: list[str] = []
        error_records = 0
        error_rows = 0  # the rows of the error file (one record can have a row per problem field)
        for stage in STAGES:
            result = self.run.results.get(stage)
            if result is None:
                continue
            for name, value in result.counters.items():
                counters[name] = counters.get(name, 0) + int(value)
            warnings.extend(result.warnings)
            for role_key, staged in result.files.items():
                role = role_key.split("#")[0]  # "errors#3": item 3 of a stage that fanned out
                if role == "errors":
                    if staged.rows:
                        error_parts.append(staged.path)
                        error_rows += staged.rows
                elif role.startswith("source"):
                    source_files.append(staged.path)
                elif role == "output":
                    outputs.append(staged.path)  # a sync that fans out delivers one per plan
            error_records += result.counters.get("error_records", 0)
        missing = [s for s in STAGES if s not in self.run.results]
        failure_reason = None
        if missing:
            stage = missing[0]
            failure_reason = self.run.failures.get(stage) or f"The {stage} stage did not finish."
        validate = self.run.results.get("validate")
        window = (validate.details.get("window") if validate else None) or {}
        status = self.status_for(error_records, bool(missing), warnings)
        if self.is_dry_run:  # said first, and after the status: being a dry run is no warning sign
            warnings.insert(0, DRY_RUN_WARNING)
        held = self.run.hold or {}
        if held.get("held") and held.get("approved"):
            why = f" ({held['decision_reason']})" if held.get("decision_reason") else ""
            warnings.insert(0, f"{held.get('reason') or 'Delivery was held for approval.'} "
                               f"Approved by {held.get('decided_by')}{why}; then delivered.")  # fmt: skip
        summary = RunSummary(
            integration_run_name=self.run_name(),
            process_name=self.run.params.get("process_name") or None,
            integration_name=self.integration_name,
            integration_reference_id=self.run.run_id,
            user=self.run.triggered_by,
            integration_type=self.integration_type,
            start_date=self.run.run_start.isoformat(),
            end_date=(end or datetime.now(UTC)).isoformat(),
            status=status,
            errors=error_records,
            warnings=warnings,
            source_files=source_files,
            output_file=outputs[0] if outputs else None,
            output_files=outputs if len(outputs) > 1 else [],
            failure_reason=failure_reason,
            window_start=window.get("start"),
            window_end=window.get("end"),
            dry_run=self.is_dry_run,
            extra_counters={
                **{k: v for k, v in counters.items() if k not in (*self.standard_counters, "error_records")},
                "error_rows": error_rows,
            },
            **{k: counters.get(k, 0) for k in self.standard_counters},
        )
        return summary, error_parts

    @staticmethod
    def error_row_count(part: StagedFile) -> int:
        return part.rows


def record_error(writer: ErrorWriter, row: ErrorRow, stage: str) -> None:
    writer.add(row.model_copy(update={"stage": stage}))
