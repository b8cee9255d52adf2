"""Hub reconciliation: compares the end states of the systems the integrations keep in step.

validate  - params (which pairs, Include Employees); nothing touched yet.
extract   - HCM ↔ PlanSource demographics: the HCM's employees in scope and PlanSource's subscribers,
            staged exactly as a full HCM Demographic Export stages them (the same reads, in the same
            employee-number order).
transform - the two walked together (a streaming merge: no side held in memory); each employee asked
            the export's own question (what would you send?); what it would send, and what no
            integration can send, is a discrepancy.
deliver   - the discrepancy file (SSNs and birth dates masked), and counts per pair and kind.

It changes nothing anywhere: repairs are runs of the integration that owns the direction.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from benefits_hub.demographics.export import DemographicExport
from benefits_hub.demographics.rules import CrossReferences
from benefits_hub.integration import Integration, StageRefused
from benefits_hub.lookup import OutOfOrder
from benefits_hub.models import IntegrationType, StagedFile, StageResult
from benefits_hub.params import ReconciliationParams
from benefits_hub.reconciliation.rules import (
    DEMOGRAPHICS,
    DISCREPANCY_COLUMNS,
    KIND_TITLES,
    PAIR_TITLES,
    counter_name,
    demographic_discrepancies,
    full_outer_join,
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
        return StageResult(
            stage="validate",
            details={
                "pairs": list(params.pairs),
                "window": full.to_details(),
                "narrowed": bool(params.include_employees),
                # read as a full export reads, unless narrowed to some employees
                "full_run": not params.include_employees,
            },
        )

    def extract(self) -> StageResult:
        # Include Employees a person mistyped, people with no primary employment: error rows, as the
        # export reports them.
        return self._export().extract()

    def transform(self) -> StageResult:
        staging = self.run.staging
        assert staging is not None
        files = self.run.result("extract").files
        xref = CrossReferences.load()
        kinds: Counter[str] = Counter()
        hcm = ((str(r["person_number"]), r) for r in staging.read_records(files["source_hcm"]))
        plansource = (
            (str(r["employee_number"]), r) for r in staging.read_records(files["source_plansource"])
        )
        compared = 0
        with staging.records("changes/discrepancies.jsonl") as found:
            try:
                for number, employee, subscriber in full_outer_join(hcm, plansource):
                    compared += 1
                    for discrepancy in demographic_discrepancies(number, employee, subscriber, xref):
                        kinds[discrepancy.kind] += 1
                        found.write(dict(zip(DISCREPANCY_COLUMNS, discrepancy.as_row(), strict=True)))
            except OutOfOrder as exc:
                raise StageRefused(
                    f"The comparison needs both systems' records in employee-number order, and {exc}. "
                    'On PostgreSQL the HCM query sorts with COLLATE "C"; tell the hub\'s administrator.'
                ) from None
        return StageResult(
            stage="transform",
            counters={"employees_compared": compared, "discrepancies": found.rows, **_by_kind(kinds)},
            files={"discrepancies": found.manifest},
        )

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
        if total:
            kinds = "; ".join(
                f"{KIND_TITLES[kind]}: {n:,}"
                for kind, n in sorted(_kinds_of(transform.counters).items(), key=lambda kv: -kv[1])
            )
            warnings.append(
                f"{PAIR_TITLES[DEMOGRAPHICS]}: {total:,} discrepancy(ies) ({kinds}). The discrepancy file "
                "lists each one, and which can be repaired by running the integration for those people."
            )
        self.run.log.info("%d discrepancy(ies) found", total)
        return StageResult(
            stage="deliver",
            files={"output": StagedFile(path=str(path), rows=total, sha256="")},
            warnings=warnings,
        )


def _by_kind(kinds: Counter[str]) -> dict[str, int]:
    """Counters per pair and kind, e.g. ``hcm_plansource_demographics__field_differs``."""
    return {counter_name(DEMOGRAPHICS, kind): n for kind, n in kinds.items()}


def _kinds_of(counters: dict[str, Any]) -> dict[str, int]:
    prefix = counter_name(DEMOGRAPHICS, "")
    return {k.removeprefix(prefix): int(v) for k, v in counters.items() if k.startswith(prefix)}
