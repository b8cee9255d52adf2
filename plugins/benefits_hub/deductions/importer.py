"""PlanSource Deductions Import: PlanSource payroll coverages to HCM payroll deductions.

validate  - params; the plan year; the seed's rules before any data moves: the nightly schedule waits
            for an initial import of the plan year, prior and current plan years are imported on
            different days (prior first), and a warning when assignments changed after the last
            successful HCM Demographic Export.
extract   - PlanSource's payroll coverage changes in the window, page by page (the raw pages are the
            run's source file).
transform - Test employees dropped and counted; each record checked and mapped to an HCM deduction
            (code through the cross-reference table, per-pay-period amounts, calendar dates).
deliver   - upserted on (person number, deduction code, effective date), a transaction per chunk;
            the output file lists what was loaded.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, date, timedelta
from typing import Any, ClassVar

from benefits_hub.breaker import SAMPLE_SIZE, ChangeSet, Share, limit_of
from benefits_hub.deductions.rules import (
    DEDUCTION_COLUMNS,
    deduction_codes,
    is_test_employee,
    map_coverage,
    plan_year_of,
)
from benefits_hub.deductions.writer import deduction_writer
from benefits_hub.integration import Integration, StageRefused, record_error
from benefits_hub.journal import DeliveryJournal
from benefits_hub.lookup import DiskLookup
from benefits_hub.models import IntegrationType, RunStatus, RunSummary, StagedFile, StageResult
from benefits_hub.params import DeductionsRunParams
from benefits_hub.staging import SafeCsvWriter
from benefits_hub.window import RunWindow, compute_window, configured_overlap, day_start, parse_instant

CHUNK = 500  # records per HCM lookup of person numbers
# Rows per upsert transaction, and per journal entry: a retried deliver replays whole transactions.
# A commit writes every index page the transaction touched, and a nightly import's rows land all over the
# key index: 25,000 rows a transaction touch far fewer pages per row than 5,000 (docs/performance.md).
WRITE_CHUNK = 25_000
# The money columns in a payroll clerk's words (as the preview's headings name them).
FIELD_WORDS = {
    "employee_amount": "Employee premium", "employer_amount": "Employer premium",
    "pretax_amount": "Pre-tax premium", "posttax_amount": "Post-tax premium",
}  # fmt: skip
EXPORT_DAG_ID = "plansource_hcm_demographic_export"
# Hub state (Airflow Variables benefits_hub.<dag_id>.<key>)
INITIAL_IMPORTS_KEY = "initial_imports"  # {plan_year_start: {"date", "run_id"}}
IMPORT_DAYS_KEY = "import_days"  # {run date: [plan_year_start, ...]} of finished imports


def _load(value: Any) -> dict[str, Any]:
    if not value:
        return {}
    return value if isinstance(value, dict) else json.loads(value)


class DeductionsImport(Integration):
    integration_name = "PlanSource Deductions Import"
    integration_type = IntegrationType.IMPORT
    hcm_conn_id: ClassVar[str] = "hcm_db"
    plansource_conn_id: ClassVar[str] = "plansource_api"

    @property
    def params(self) -> DeductionsRunParams:
        return DeductionsRunParams.parse(self.run.params)

    def _hcm(self) -> Any:
        from benefits_hub.hooks.hcm import HcmHook

        return HcmHook(self.hcm_conn_id)

    def _plansource(self) -> Any:
        from benefits_hub.hooks.plansource import PlanSourceHook

        return PlanSourceHook(self.plansource_conn_id)

    @property
    def run_date(self) -> date:
        return self.run.run_start.astimezone(UTC).date()

    # -- validate ---------------------------------------------------------------------------------
    def validate(self) -> StageResult:
        params = self.params
        initial_imports = _load(self.run.state_get(INITIAL_IMPORTS_KEY))
        import_days = _load(self.run.state_get(IMPORT_DAYS_KEY))
        plan_year = params.plan_year_start
        initial = params.deduction_start_date is not None
        if plan_year is None:
            if not initial_imports:
                raise StageRefused(
                    "No initial import of a plan year has completed yet, so the nightly import cannot run. "
                    "Run this import once by hand with Deduction Start Date (the plan year's first change in "
                    "PlanSource) and Plan Year Start Date, then let the schedule take over."
                )
            plan_year = max(date.fromisoformat(k) for k in initial_imports)
        elif not initial and plan_year.isoformat() not in initial_imports:
            raise StageRefused(
                f"No initial import of the plan year starting {plan_year} has completed. Run it first with "
                "Deduction Start Date set to the plan year's first change in PlanSource."
            )
        if initial:
            later = sorted(k for k in initial_imports if date.fromisoformat(k) > plan_year)
            if later:
                raise StageRefused(
                    f"The plan year starting {later[0]} was already imported; PlanSource requires the prior "
                    f"plan year ({plan_year}) to be imported first. Ask PlanSource before re-importing it."
                )
        today = self.run_date.isoformat()
        others_today = [y for y in import_days.get(today, []) if y != plan_year.isoformat()]
        if others_today:
            raise StageRefused(
                f"An import of the plan year starting {others_today[0]} already ran today; PlanSource "
                f"requires prior-year and current-year deductions on different days. Import the plan year "
                f"starting {plan_year} tomorrow."
            )
        window = self._window(params, plan_year)
        warnings = self._assignment_warning()
        return StageResult(
            stage="validate",
            details={
                "plan_year_start": plan_year.isoformat(),
                "initial_import": initial,
                "window": window.to_details(),
                "narrowed": bool(params.include_employees),
            },
            warnings=warnings,
        )

    def _window(self, params: DeductionsRunParams, plan_year: date) -> RunWindow:
        """PlanSource's filter takes whole UTC days (``RunWindow.days``); the window itself is the
        hub's one model, so the import overlaps its last run exactly as the export does."""
        run_start = self.run.run_start
        if params.deduction_start_date is not None:
            return RunWindow(day_start(params.deduction_start_date), run_start, "Deduction Start Date")
        if not params.delta:
            year_before = day_start(plan_year - timedelta(days=366))
            return RunWindow(year_before, run_start, "full plan year (Delta off)")
        return compute_window(
            delta=True,
            lookback_days=params.lookback_days,
            run_start=run_start,
            watermark=self.watermark(),
            overlap=configured_overlap(),
        )

    def _assignment_warning(self) -> list[str]:
        from benefits_hub.operators.stages import read_state

        export_mark = read_state(EXPORT_DAG_ID, "watermark")
        latest = self._hcm().latest_assignment_change()
        if latest is None:
            return []
        if not export_mark:
            return ["No successful HCM Demographic Export is on record: run it before importing deductions."]
        if latest > (parse_instant(export_mark) or latest):
            return [
                "Employee assignments changed in the HCM after the last successful HCM Demographic Export "
                f"({export_mark}): run the export first, or deductions may land on outdated assignments."
            ]
        return []

    # -- extract ----------------------------------------------------------------------------------
    def extract(self) -> StageResult:
        window = RunWindow.from_details(self.run.result("validate").details["window"])
        first_day, last_day = window.days()
        staging = self.run.staging
        assert staging is not None
        pages = records = 0
        # Test employees are asked for too, so that the summary can count what it leaves out.
        with staging.records("source/payroll_coverages.pages.jsonl") as source:
            plansource = self._plansource()
            pages_in = plansource.iter_payroll_coverage_pages(first_day, last_day, include_test=True)
            # The hook has the next pages on their way from PlanSource while this one is written.
            for page in pages_in:
                source.write_received(page)  # the page's bytes as PlanSource sent them
                pages += 1
                records += len(page.get("payroll_coverages") or [])
        self.run.log.info(
            "PlanSource changes %s to %s (%s): %d record(s) in %d page(s)",
            first_day, last_day, window.basis, records, pages,
        )  # fmt: skip
        return StageResult(
            stage="extract",
            counters={"source_records": records, "source_pages": pages},
            files={"source": source.manifest},
        )

    def coverages(self) -> Iterator[dict[str, Any]]:
        """Every record of the run's source file, one page in memory at a time."""
        staging = self.run.staging
        assert staging is not None
        for page in staging.read_records(self.run.result("extract").files["source"]):
            yield from page.get("payroll_coverages") or []

    # -- transform --------------------------------------------------------------------------------
    def transform(self) -> StageResult:
        params = self.params
        validate = self.run.result("validate").details
        plan_year = date.fromisoformat(validate["plan_year_start"])
        include = set(params.include_employees)
        codes = deduction_codes()
        hcm = self._hcm()
        staging = self.run.staging
        assert staging is not None
        counters = {"records_processed": 0, "other_plan_year": 0}
        with (
            hcm.connection() as conn,  # one for the run's many lookups, not one each
            DiskLookup() as test_people,
            DiskLookup() as people,
            self.run.error_file("transform") as errors,
            staging.records("changes/deductions.jsonl") as deductions,
        ):
            chunk: list[dict[str, Any]] = []

            def flush() -> None:
                numbers = sorted({str(c.get("subscriber_code") or "") for c in chunk} - {""})
                known = hcm.known_person_numbers(numbers, conn) if numbers else set()
                loaded: set[str] = set()  # an employee's coverages mostly come together: counted once
                for coverage in chunk:
                    mapped = map_coverage(coverage, codes, mapped_person(coverage) in known)
                    for problem in mapped.errors:
                        record_error(errors, problem, "transform")
                    if mapped.row is not None:
                        deductions.write(mapped.row)
                        loaded.add(mapped.person_number)
                people.add_keys(loaded)
                chunk.clear()

            for coverage in self.coverages():
                person = mapped_person(coverage)
                # Outside the run's selection first: counts (test employees too) are of the selection.
                if include and person not in include:
                    continue
                if plan_year_of(coverage) not in (plan_year, None):
                    counters["other_plan_year"] += 1
                    continue
                if is_test_employee(coverage):
                    test_people.add(person)
                    continue
                counters["records_processed"] += 1
                chunk.append(coverage)
                if len(chunk) >= CHUNK:
                    flush()
            flush()
            counters["test_employees_skipped"] = len(test_people)
            counters["employees_processed"] = len(people)
        counters["error_records"] = errors.records
        return StageResult(
            stage="transform",
            counters=counters,
            files={"deductions": deductions.manifest, "errors": errors.manifest},
        )

    # -- deliver ----------------------------------------------------------------------------------
    def deliver(self) -> StageResult:
        if self.is_dry_run:
            return self.preview()
        staging = self.run.staging
        assert staging is not None
        transform = self.run.result("transform")
        counters = {"records_created": 0, "records_updated": 0, "records_skipped": 0}
        # A chunk the HCM committed in an earlier attempt of this run is replayed, not written again.
        journal = DeliveryJournal(staging)
        with (
            deduction_writer(self._hcm(), self.run.run_id) as writer,
            staging.text_file("output/loaded_deductions.csv") as (output_stream, output_path),
        ):
            output = SafeCsvWriter(output_stream)
            output.writerow(["action", *DEDUCTION_COLUMNS])
            loaded = 0
            for chunk, key in journal.staged_batches("chunk", transform.files["deductions"], WRITE_CHUNK):
                # The journal keeps each outcome as (action, position in the chunk): no row values.
                positions = {id(row): n for n, row in enumerate(chunk)}
                outcomes = journal.once(
                    "chunk", chunk,
                    lambda chunk=chunk, positions=positions: [
                        (action, positions[id(row)]) for action, row in writer.apply(chunk)
                    ],
                    key=key,
                )  # fmt: skip
                for action, position in outcomes:
                    row = chunk[position]
                    if action == "unchanged":
                        counters["records_skipped"] += 1
                        continue
                    journal.tally(counters, "records_created" if action == "created" else "records_updated")
                    output.writerow([action, *map(row.get, DEDUCTION_COLUMNS)])  # a blank for None
                    loaded += 1
        journal.log_replays(self.run.log, "chunk(s) of deductions")
        return StageResult(
            stage="deliver",
            counters=counters,
            files={"output": StagedFile(path=str(output_path), rows=loaded, sha256="")},
        )

    # -- the circuit breaker (benefits_hub.breaker) ----------------------------------------------------
    def change_set(self) -> ChangeSet:
        """Employees whose loaded deduction amounts this run would change, of all with deductions.

        The HCM is only read, a chunk at a time as deliver reads it, and only when the run holds enough
        employees to go over the limit at all: an hourly handful is never compared twice."""
        transform = self.run.result("transform")
        hcm = self._hcm()
        with_deductions = hcm.people_with_deductions()
        in_run = int(transform.counters.get("employees_processed", 0))
        counts = {"Deductions to load": transform.files["deductions"].rows, "Employees in this run": in_run}
        share = Share(part=in_run, whole=with_deductions)  # at most this many can change
        if share.pct <= limit_of("hold_amount_changes_pct", self.run.params):
            return ChangeSet(counts=counts, shares={"hold_amount_changes_pct": share})
        staging = self.run.staging
        assert staging is not None
        changing: set[str] = set()
        sample: list[dict[str, str]] = []
        with deduction_writer(hcm, self.run.run_id) as writer:
            staged = staging.read_records(transform.files["deductions"])
            while chunk := list(itertools.islice(staged, WRITE_CHUNK)):
                for row, columns in writer.amount_changes(chunk):
                    changing.add(row["person_number"])
                    if len(sample) < SAMPLE_SIZE:
                        words = ", ".join(FIELD_WORDS.get(c, c) for c in columns)
                        sample.append(
                            {"Employee": row["person_number"], "Deduction code": row["deduction_code"],
                             "Amounts changing": words}
                        )  # fmt: skip
        counts["Employees whose amounts change"] = len(changing)
        return ChangeSet(
            counts=counts,
            shares={"hold_amount_changes_pct": Share(part=len(changing), whole=with_deductions)},
            sample=sample,
            sample_columns=("Employee", "Deduction code", "Amounts changing"),
        )

    def preview(self) -> StageResult:
        """Dry Run: each deduction a real run would create or update in the HCM, decided by the same
        writer against what the HCM holds now, and written to the preview file; the HCM is only read."""
        staging = self.run.staging
        assert staging is not None
        transform = self.run.result("transform")
        counters = {"would_create": 0, "would_update": 0, "would_leave_unchanged": 0}
        with (
            deduction_writer(self._hcm(), self.run.run_id) as writer,
            staging.text_file("output/preview.csv") as (stream, path),
        ):
            preview = SafeCsvWriter(stream)
            preview.writerow(PREVIEW_COLUMNS)
            rows = 0
            staged = staging.read_records(transform.files["deductions"])
            while chunk := list(itertools.islice(staged, WRITE_CHUNK)):  # the chunks deliver would write
                for action, row in writer.plan(chunk):
                    if action == "unchanged":
                        counters["would_leave_unchanged"] += 1
                        continue
                    counters["would_create" if action == "created" else "would_update"] += 1
                    preview.writerow([PREVIEW_ACTIONS[action], *map(row.get, PREVIEW_FIELDS)])
                    rows += 1
        self.run.log.info("Dry run: %d deduction(s) would be loaded into the HCM; nothing was written", rows)
        return self.preview_result(counters, path, rows)

    # -- after the summary ------------------------------------------------------------------------
    def after_summary(self, summary: RunSummary) -> None:
        validate = self.run.results.get("validate")
        if validate is None or "deliver" not in self.run.results or self.is_dry_run:
            return  # nothing was imported: no state moves
        plan_year = validate.details["plan_year_start"]
        today = self.run_date.isoformat()
        import_days = _load(self.run.state_get(IMPORT_DAYS_KEY))
        days = {d: y for d, y in import_days.items() if d >= (self.run_date - timedelta(days=7)).isoformat()}
        days[today] = sorted({*days.get(today, []), plan_year})
        self.run.state_set(IMPORT_DAYS_KEY, json.dumps(days))
        if validate.details["initial_import"] and not validate.details["narrowed"]:
            # Completed with Errors counts: the plan year is loaded; errors go to the Transaction Assistant.
            initial = _load(self.run.state_get(INITIAL_IMPORTS_KEY))
            initial[plan_year] = {"date": today, "run_id": self.run.run_id}
            self.run.state_set(INITIAL_IMPORTS_KEY, json.dumps(initial))
        if summary.status == RunStatus.COMPLETED:
            self.advance_watermark()


# A Dry Run's preview (output/preview.csv): the action, then the deduction in a payroll clerk's words.
PREVIEW_ACTIONS = {"created": "create", "updated": "update"}
PREVIEW_FIELDS = (
    "person_number", "deduction_code", "effective_date", "end_date", "employee_amount", "employer_amount",
    "pretax_amount", "posttax_amount", "coverage_level", "benefit_name",
)  # fmt: skip
PREVIEW_COLUMNS = (
    "Action", "Employee", "Deduction code", "Start date", "End date", "Employee premium", "Employer premium",
    "Pre-tax premium", "Post-tax premium", "Coverage level", "Benefit",
)  # fmt: skip


def mapped_person(coverage: dict[str, Any]) -> str:
    return str(coverage.get("subscriber_code") or "").strip()
