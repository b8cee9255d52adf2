"""Hub reconciliation: compares the end states of the systems the integrations keep in step.

validate  - params (which pairs, Include Employees); the plan year the Deductions Import last loaded.
extract   - HCM ↔ PlanSource demographics: the HCM's employees in scope and PlanSource's subscribers,
            staged exactly as a full HCM Demographic Export stages them (the same reads, in the same
            employee-number order). PlanSource coverages ↔ HCM payroll deductions: the plan year's
            coverages as a Delta-off import reads them, and payroll's deductions of that plan year.
transform - each pair walked together (a streaming merge: no side held in memory); each employee asked
            the export's own question (what would you send?), each coverage mapped by the import's own
            rules; what an integration would send, and what none can, is a discrepancy.
deliver   - the discrepancy file (SSNs and birth dates masked), and counts per pair and kind.

It changes nothing anywhere: repairs are runs of the integration that owns the direction.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, timedelta
from typing import Any

from benefits_hub.deductions.importer import mapped_person
from benefits_hub.deductions.rules import (
    coverage_key,
    deduction_codes,
    is_stale,
    is_test_employee,
    map_coverage,
    plan_year_of,
)
from benefits_hub.demographics.export import DemographicExport
from benefits_hub.demographics.rules import CrossReferences
from benefits_hub.hooks.hcm import HcmHook
from benefits_hub.hooks.plansource import PlanSourceHook
from benefits_hub.integration import Integration, StageRefused
from benefits_hub.lookup import DiskLookup, OutOfOrder, full_outer_join
from benefits_hub.models import IntegrationType, StagedFile, StageResult
from benefits_hub.params import ReconciliationParams
from benefits_hub.reconciliation.ijoin_rules import (
    RECORDKEEPER_IJOIN,
    participant_discrepancies,
    plan_discrepancies,
)
from benefits_hub.reconciliation.rules import (
    DEDUCTIONS,
    DEMOGRAPHICS,
    DISCREPANCY_COLUMNS,
    IMPORT_DAG_ID,
    KEY_SEP,
    KIND_TITLES,
    PAIR_TITLES,
    Discrepancy,
    counter_name,
    deduction_discrepancies,
    deduction_key,
    demographic_discrepancies,
    refused_coverage,
)
from benefits_hub.staging import SafeCsvWriter
from benefits_hub.window import RunWindow


class Reconciliation(Integration):
    integration_name = "Hub Reconciliation"
    integration_type = IntegrationType.NONE

    @property
    def params(self) -> ReconciliationParams:
        return ReconciliationParams.parse(self.run.params)

    def _export(self) -> DemographicExport:
        """The export's own reads, run on this run's context (validate below gives it a full window)."""
        return DemographicExport(self.run)

    def validate(self) -> StageResult:
        params = self.params
        try:
            CrossReferences.load()
        except (OSError, KeyError) as exc:
            raise StageRefused(f"A cross-reference table cannot be read: {exc}") from None
        full = RunWindow(None, self.run.run_start, "reconciliation: every employee's current state")
        pairs = list(params.pairs)
        warnings: list[str] = []
        plan_year = None
        if DEDUCTIONS in pairs:
            as_of = params.as_of_date or self.run.run_start.astimezone(UTC).date()
            plan_year = self._loaded_plan_year(as_of)
            if plan_year is None:
                pairs.remove(DEDUCTIONS)
                warnings.append(
                    f"{PAIR_TITLES[DEDUCTIONS]}: not compared, because no plan year in effect on {as_of} "
                    "has been imported (no initial Deductions Import of it has completed): there is nothing "
                    "in payroll to compare."
                )
        return StageResult(
            stage="validate",
            details={
                "pairs": pairs,
                "window": full.to_details(),
                "narrowed": bool(params.include_employees or params.plan_ids),
                # read as a full export reads, unless narrowed to some employees
                "full_run": not params.include_employees,
                "plan_year_start": plan_year,
            },
            warnings=warnings,
        )

    def _loaded_plan_year(self, as_of: date) -> str | None:
        """The latest plan year whose initial import completed and that starts on or before ``as_of``."""
        from benefits_hub.deductions.importer import INITIAL_IMPORTS_KEY
        from benefits_hub.operators.stages import read_state

        loaded = json.loads(read_state(IMPORT_DAG_ID, INITIAL_IMPORTS_KEY) or "{}")
        in_effect = [year for year in loaded if year <= as_of.isoformat()]
        return max(in_effect) if in_effect else None

    def _pairs(self) -> list[str]:
        return list(self.run.result("validate").details["pairs"])

    def extract(self) -> StageResult:
        results = []
        if DEMOGRAPHICS in self._pairs():
            # Include Employees a person mistyped, people with no primary employment: error rows, as the
            # export reports them.
            results.append(self._export().extract())
        if DEDUCTIONS in self._pairs():
            results.append(self._extract_deductions())
        if RECORDKEEPER_IJOIN in self._pairs():
            results.append(self._extract_ijoin())
        merged = StageResult(stage="extract")
        for result in results:  # each pair's own files (distinct roles), counters summed
            for name, value in result.counters.items():
                merged.counters[name] = merged.counters.get(name, 0) + value
            merged.files.update(result.files)
            merged.warnings.extend(result.warnings)
            merged.details.update(result.details)
        return merged

    def _extract_deductions(self) -> StageResult:
        """The plan year's coverages as a Delta-off import reads them (every change since a year before
        the plan year, test employees included), and payroll's deductions of that plan year."""
        staging = self.run.staging
        assert staging is not None
        plan_year = date.fromisoformat(self.run.result("validate").details["plan_year_start"])
        first_day = (plan_year - timedelta(days=366)).isoformat()
        last_day = self.run.run_start.astimezone(UTC).date().isoformat()
        records = 0
        with staging.records("source/payroll_coverages.pages.jsonl") as source:
            # The hook has the next pages on their way while this one is written, as the import's extract.
            for page in PlanSourceHook().iter_payroll_coverage_pages(first_day, last_day, include_test=True):
                source.write_received(page)  # the page's bytes as PlanSource sent them
                records += len(page.get("payroll_coverages") or [])
        with staging.records("source/payroll_deductions.jsonl") as payroll:
            for row in HcmHook().iter_payroll_deductions(plan_year.isoformat()):
                payroll.write(row)
        return StageResult(
            stage="extract",
            counters={"coverage_records": records, "payroll_deductions": payroll.rows},
            files={"source_coverages": source.manifest, "source_payroll": payroll.manifest},
        )

    def _extract_ijoin(self) -> StageResult:
        """Each plan as the recordkeeper and iJoin hold it, and, for a plan both have (and iJoin has plan
        data for), its participants as the Participant Sync stages them and as iJoin lists them, both in
        participant-id order; plans in plan-id order. Plus the elections iJoin has not handed over yet."""
        from benefits_hub.hooks.ijoin import IJoinHook
        from benefits_hub.hooks.recordkeeper import RecordkeeperHook
        from benefits_hub.ijoin.participant_sync import source_records
        from benefits_hub.ijoin.rules import months_before

        staging = self.run.staging
        assert staging is not None
        rk, ijoin = RecordkeeperHook(), IJoinHook()
        in_recordkeeper = set(rk.plan_ids())
        in_ijoin = {plan["plan_id"] for plan in ijoin.list_plans()}
        chosen = set(self.params.plan_ids)
        plans = sorted(p for p in in_recordkeeper | in_ijoin if not chosen or p in chosen)
        since = months_before(self.run.run_start.astimezone(UTC).date(), 3).isoformat()
        with (
            staging.records("source/ijoin_plans.jsonl") as both_plans,
            staging.records("source/recordkeeper_participants.jsonl") as ours,
            staging.records("source/ijoin_participants.jsonl") as theirs,
            rk.connection() as conn,
        ):
            for plan_id in plans:
                held = ijoin.get_plan(plan_id) if plan_id in in_ijoin else None
                source = None
                if plan_id in in_recordkeeper:
                    source = {
                        "plan": rk.plan(plan_id),
                        "contacts": rk.contacts(plan_id),
                        "match_tiers": rk.match_tiers(plan_id),
                        "funds": rk.funds(plan_id),
                    }
                both_plans.write({"plan_id": plan_id, "recordkeeper": source, "ijoin": held})
                if source is None or not held or not (held.get("active") or held.get("draft")):
                    continue  # the plan's own discrepancy says why; no participants to compare yet
                code = source["plan"].get("pay_frequency_code")
                for record in source_records(rk, conn, plan_id, since):
                    ours.write({"plan_id": plan_id, "plan_code": code, **record})
                for participant in ijoin.list_participants(plan_id, limit=sys.maxsize):
                    theirs.write({"plan_id": plan_id, **participant})
        elections = sorted(
            {
                f"{e['plan_id']}{KEY_SEP}{e['participant_id']}{KEY_SEP}{e['kind']}"
                for e in ijoin.pending_elections()
            }
        )
        return StageResult(
            stage="extract",
            counters={"recordkeeper_participants": ours.rows, "ijoin_participants": theirs.rows},
            files={
                "source_plans": both_plans.manifest,
                "source_recordkeeper_participants": ours.manifest,
                "source_ijoin_participants": theirs.manifest,
            },
            details={"pending_elections": elections},
        )

    def _compare_ijoin(self, write: Callable[[Discrepancy], None]) -> dict[str, int]:
        """Each plan by the Plan Sync's rules; then each participant of the plans both hold, by the
        Participant Sync's rules (a merge on (plan, participant): neither side held in memory)."""
        from benefits_hub.ijoin.participant_sync import participant_payload

        staging = self.run.staging
        assert staging is not None
        extract = self.run.result("extract")
        files = extract.files
        plans = 0
        for plan in staging.read_records(files["source_plans"]):
            plans += 1
            for discrepancy in plan_discrepancies(plan["plan_id"], plan["recordkeeper"], plan["ijoin"]):
                write(discrepancy)
        elected: dict[str, set[str]] = {}
        for entry in extract.details.get("pending_elections") or []:
            plan_id, participant_id, kind = entry.split(KEY_SEP)
            elected.setdefault(f"{plan_id}{KEY_SEP}{participant_id}", set()).add(kind)
        as_of = self.run.run_start.astimezone(UTC).date()
        ours = (
            (f"{r['plan_id']}{KEY_SEP}{r['participant']['participant_id']}", r)
            for r in staging.read_records(files["source_recordkeeper_participants"])
        )
        theirs = (
            (f"{r['plan_id']}{KEY_SEP}{r['participant_id']}", r)
            for r in staging.read_records(files["source_ijoin_participants"])
        )
        participants = 0
        for key, record, held in full_outer_join(ours, theirs, ("recordkeeper", "iJoin")):
            participants += 1
            plan_id, participant_id = key.split(KEY_SEP)
            expected = participant_payload(record, record["plan_code"], as_of)[0] if record else None
            for discrepancy in participant_discrepancies(
                plan_id, participant_id, expected, held, elected.get(key, set())
            ):
                write(discrepancy)
        return {"plans_compared": plans, "participants_compared": participants}

    def transform(self) -> StageResult:
        staging = self.run.staging
        assert staging is not None
        kinds: Counter[tuple[str, str]] = Counter()
        counters: dict[str, int] = {}
        with staging.records("changes/discrepancies.jsonl") as found:

            def write(discrepancy: Discrepancy) -> None:
                kinds[discrepancy.pair, discrepancy.kind] += 1
                found.write(dict(zip(DISCREPANCY_COLUMNS, discrepancy.as_row(), strict=True)))

            try:
                if DEMOGRAPHICS in self._pairs():
                    counters["employees_compared"] = self._compare_demographics(write)
                if DEDUCTIONS in self._pairs():
                    counters["deductions_compared"] = self._compare_deductions(write)
                if RECORDKEEPER_IJOIN in self._pairs():
                    counters.update(self._compare_ijoin(write))
            except OutOfOrder as exc:
                raise StageRefused(
                    f"The comparison needs both systems' records in key order, and {exc}. "
                    "Tell the hub's administrator (on PostgreSQL the HCM's and the recordkeeper's queries "
                    'sort with COLLATE "C"; a vendor listing out of order is the vendor\'s to fix).'
                ) from None
        return StageResult(
            stage="transform",
            counters={
                **counters,
                "discrepancies": found.rows,
                **{counter_name(pair, kind): n for (pair, kind), n in kinds.items()},
            },
            files={"discrepancies": found.manifest},
        )

    def _compare_demographics(self, write: Callable[[Discrepancy], None]) -> int:
        staging = self.run.staging
        assert staging is not None
        files = self.run.result("extract").files
        xref = CrossReferences.load()
        hcm = ((str(r["person_number"]), r) for r in staging.read_records(files["source_hcm"]))
        plansource = (
            (str(r["employee_number"]), r) for r in staging.read_records(files["source_plansource"])
        )
        compared = 0
        for number, employee, subscriber in full_outer_join(hcm, plansource):
            compared += 1
            for discrepancy in demographic_discrepancies(number, employee, subscriber, xref):
                write(discrepancy)
        return compared

    def _compare_deductions(self, write: Callable[[Discrepancy], None]) -> int:
        """Each coverage mapped by the import's own rules (the latest change of a key wins, as the
        import's writer decides), sorted on disk by key, then merged with payroll's key-ordered rows."""
        staging = self.run.staging
        assert staging is not None
        files = self.run.result("extract").files
        plan_year = date.fromisoformat(self.run.result("validate").details["plan_year_start"])
        include = set(self.params.include_employees)
        codes = deduction_codes()
        hcm = HcmHook()
        test_people: set[str] = set()
        refused: set[str] = set()  # PlanSource records the import refuses, by key and by id (a few)
        compared = 0
        with hcm.connection() as conn, DiskLookup() as expected:  # one connection for every lookup
            chunk: list[dict[str, Any]] = []

            def flush() -> None:
                known = hcm.known_person_numbers(sorted({mapped_person(c) for c in chunk} - {""}), conn)
                for coverage in chunk:
                    mapped = map_coverage(coverage, codes, mapped_person(coverage) in known)
                    if mapped.errors:
                        write(refused_coverage(mapped.person_number, mapped.errors[0]))
                        readable = coverage_key(coverage, codes)
                        if readable:
                            refused.add(KEY_SEP.join(readable))
                        if coverage.get("id"):
                            refused.add(str(coverage["id"]))
                        continue
                    assert mapped.row is not None
                    key = deduction_key(mapped.row)
                    earlier = expected.get(key)
                    if earlier is None or not is_stale(mapped.row, earlier):
                        expected.add(key, mapped.row)
                chunk.clear()

            for page in staging.read_records(files["source_coverages"]):
                for coverage in page.get("payroll_coverages") or []:
                    person = mapped_person(coverage)
                    if (include and person not in include) or plan_year_of(coverage) not in (plan_year, None):
                        continue
                    if is_test_employee(coverage):
                        test_people.add(person)
                        continue
                    chunk.append(coverage)
                    if len(chunk) >= 500:
                        flush()
            flush()
            payroll = (
                (deduction_key(row), row)
                for row in staging.read_records(files["source_payroll"])
                if not include or row["person_number"] in include
            )
            for key, want, have in full_outer_join(expected.items(), payroll):
                compared += 1
                for discrepancy in deduction_discrepancies(key, want, have, test_people, refused):
                    write(discrepancy)
        return compared

    def deliver(self) -> StageResult:
        staging = self.run.staging
        assert staging is not None
        transform = self.run.result("transform")
        with staging.text_file("output/discrepancies.csv") as (stream, path):
            writer = SafeCsvWriter(stream)
            writer.writerow(DISCREPANCY_COLUMNS)
            for row in staging.read_records(transform.files["discrepancies"]):
                writer.writerow([row[c] for c in DISCREPANCY_COLUMNS])
        total = transform.counters["discrepancies"]
        warnings = []
        for pair in self._pairs():
            by_kind = _kinds_of(transform.counters, pair)
            if not by_kind:
                continue
            kinds = "; ".join(
                f"{KIND_TITLES[kind]}: {n:,}" for kind, n in sorted(by_kind.items(), key=lambda kv: -kv[1])
            )
            warnings.append(
                f"{PAIR_TITLES[pair]}: {sum(by_kind.values()):,} discrepancy(ies) ({kinds}). The discrepancy "
                "file lists each one, and which can be repaired by running the integration for those people."
            )
        self.run.log.info("%d discrepancy(ies) found", total)
        return StageResult(
            stage="deliver",
            files={"output": StagedFile(path=str(path), rows=total, sha256="")},
            warnings=warnings,
        )


def _kinds_of(counters: dict[str, Any], pair: str) -> dict[str, int]:
    prefix = counter_name(pair, "")
    return {k.removeprefix(prefix): int(v) for k, v in counters.items() if k.startswith(prefix)}
