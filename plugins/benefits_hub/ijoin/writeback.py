"""iJoin → recordkeeper enrollment write-back: the one write the hub makes to the recordkeeper.

Participant-directed elections made on iJoin's enrollment site (contribution rates, allocations) are
applied to the recordkeeper once each and marked sent in iJoin. Each election is applied in one
recordkeeper transaction together with its row in ``rk_applied_election``; if marking it sent in iJoin
fails afterwards, the next run finds it applied and only marks it sent. Never twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from benefits_hub.ijoin.plan_sync import IJoinSync
from benefits_hub.ijoin.rules import allocation_problem
from benefits_hub.integration import record_error
from benefits_hub.models import ErrorRow, IntegrationType, RunStatus, RunSummary, StageResult
from benefits_hub.staging import SafeCsvWriter
from benefits_hub.values import ValueProblem, money


def election_problems(election: dict[str, Any]) -> list[str]:
    problems = []
    if election.get("kind") == "contribution_rate":
        rates = election.get("contribution_rates") or {}
        try:
            values = [money(rates.get(k)) or Decimal("0") for k in ("pretax_pct", "roth_pct", "aftertax_pct")]
        except ValueProblem:
            return ["A contribution rate is not a number."]
        if any(v < 0 or v > 100 for v in values):
            problems.append("A contribution rate is outside 0-100%.")
        if sum(values) > 100:
            problems.append("Contribution rates add up to more than 100% of pay.")
    elif election.get("kind") == "allocation":
        problem = allocation_problem(election.get("allocations") or [])
        if problem:
            problems.append(problem)
    else:
        problems.append(f"Unknown election kind '{election.get('kind')}'.")
    return problems


class EnrollmentWriteback(IJoinSync):
    integration_name = "iJoin Enrollment Write-back"
    integration_type = IntegrationType.IMPORT
    success_status = RunStatus.SUCCESSFUL

    def validate(self) -> StageResult:
        return StageResult(stage="validate", details={"window": {}})

    def extract(self) -> StageResult:
        staging = self.run.staging
        assert staging is not None
        with staging.records("source/pending_elections.jsonl") as source:
            source.write_many(self._ijoin().pending_elections())
        return StageResult(
            stage="extract", counters={"records_processed": source.rows}, files={"source": source.manifest}
        )

    def transform(self) -> StageResult:
        staging = self.run.staging
        assert staging is not None
        rk = self._recordkeeper()
        with (
            self.run.error_file("transform") as errors,
            staging.records("changes/elections.jsonl") as valid,
        ):
            for election in staging.read_records(self.run.result("extract").files["source"]):
                problems = election_problems(election)
                if not rk.participant_exists(
                    election.get("plan_id") or "", election.get("participant_id") or ""
                ):
                    problems.append("The recordkeeper has no such participant in this plan.")
                for problem in problems:
                    record_error(
                        errors,
                        ErrorRow(
                            record_key=str(election.get("election_id")), field=str(election.get("kind")),
                            rule="election", reason=problem,
                        ),
                        "transform",
                    )  # fmt: skip
                if not problems:
                    valid.write(election)
        return StageResult(
            stage="transform",
            counters={"error_records": errors.records},
            files={"elections": valid.manifest, "errors": errors.manifest},
        )

    def preview(self) -> StageResult:
        """Dry Run: each election a real run would apply to the recordkeeper (or only mark sent, when an
        earlier run applied it); nothing is applied and nothing is marked sent in iJoin."""
        staging = self.run.staging
        assert staging is not None
        elections = list(staging.read_records(self.run.result("transform").files["elections"]))
        applied = self._recordkeeper().applied_elections([str(e["election_id"]) for e in elections])
        counters = {"would_apply": 0, "would_only_mark_sent": 0}
        with staging.text_file("output/preview.csv") as (stream, path):
            writer = SafeCsvWriter(stream)
            writer.writerow(["Election", "Plan", "Participant", "Action", "Change"])
            for election in elections:
                done = str(election["election_id"]) in applied
                counters["would_only_mark_sent" if done else "would_apply"] += 1
                action = "mark sent in iJoin (applied before)" if done else "apply to the recordkeeper"
                writer.writerow(
                    [election["election_id"], election["plan_id"], election["participant_id"], action,
                     _change(election)]
                )  # fmt: skip
        return self.preview_result(counters, path, len(elections))

    def deliver(self) -> StageResult:
        if self.is_dry_run:
            return self.preview()
        staging = self.run.staging
        assert staging is not None
        rk, ijoin = self._recordkeeper(), self._ijoin()
        counters = {"records_created": 0, "already_applied": 0, "participants": 0}
        people: set[tuple[str, str]] = set()
        for election in staging.read_records(self.run.result("transform").files["elections"]):
            applied = rk.apply_election(election, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"))
            counters["records_created" if applied else "already_applied"] += 1
            ijoin.mark_election_sent(election["election_id"])
            people.add((election["plan_id"], election["participant_id"]))
        counters["participants"] = len(people)
        return StageResult(stage="deliver", counters=counters)

    def build_summary(self, end: Any = None) -> tuple[RunSummary, list[str]]:
        return super(IJoinSync, self).build_summary(end)


def _change(election: dict[str, Any]) -> str:
    """An election's change in words: "pre-tax 6%, Roth 2%, after-tax 0%" or "F001 60%, F002 40%"."""
    if election.get("kind") == "contribution_rate":
        rates = election.get("contribution_rates") or {}
        names = (("pretax_pct", "pre-tax"), ("roth_pct", "Roth"), ("aftertax_pct", "after-tax"))
        return ", ".join(f"{label} {rates.get(key) or 0}%" for key, label in names)
    allocations = election.get("allocations") or []
    return ", ".join(f"{a.get('fund_id')} {a.get('pct')}%" for a in allocations)
