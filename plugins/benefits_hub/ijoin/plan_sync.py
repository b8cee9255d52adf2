"""Recordkeeper → iJoin Plan Sync: plan specifications, contacts, matching tiers and fund line-ups.

validate  - which plans (param ``plan_ids``, empty = all); the run fans out one item per plan.
extract   - per plan: the recordkeeper's plan rows and iJoin's current plan (versions, protected fields).
transform - per plan: what blocks it (no EIN, a fund without a ticker...) makes that plan Failed with
            its reasons, others go on; else the version to send, without what iJoin protects.
deliver   - per plan: iJoin's sync applies its own rule (a line-up change on an active plan becomes a
            draft: Successful with warnings); every plan's outcome goes to iJoin's activity log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from benefits_hub.ijoin.drafts import review_run_id
from benefits_hub.ijoin.rules import lineup, never_activatable, plan_problems, plan_version, without_protected
from benefits_hub.integration import Integration, StageRefused, record_error
from benefits_hub.models import ErrorRow, IntegrationType, RunStatus, RunSummary, StagedFile, StageResult
from benefits_hub.params import IJoinRunParams
from benefits_hub.staging import SafeCsvWriter

SUCCESSFUL = "Successful"
WITH_WARNINGS = "Successful with warnings"
FAILED = "Failed"


class IJoinSync(Integration):
    """What the two iJoin syncs share: plans chosen by ``plan_ids``, one item per plan, iJoin statuses."""

    integration_type = IntegrationType.EXPORT
    success_status = RunStatus.SUCCESSFUL
    recordkeeper_conn_id: ClassVar[str] = "recordkeeper_db"
    ijoin_conn_id: ClassVar[str] = "ijoin_api"
    activity_type: ClassVar[str]

    def _recordkeeper(self) -> Any:
        from benefits_hub.hooks.recordkeeper import RecordkeeperHook

        return RecordkeeperHook(self.recordkeeper_conn_id)

    def _ijoin(self) -> Any:
        from benefits_hub.hooks.ijoin import IJoinHook

        return IJoinHook(self.ijoin_conn_id)

    def validate(self) -> StageResult:
        params = IJoinRunParams.parse(self.run.params)
        known = self._recordkeeper().plan_ids()
        unknown = [p for p in params.plan_ids if p not in known]
        if unknown:
            raise StageRefused(f"Param 'plan_ids': {unknown[0]} is not a plan in the recordkeeper.")
        plans = list(params.plan_ids) or known
        if not plans:
            raise StageRefused("The recordkeeper has no plans to sync.")
        return StageResult(stage="validate", details={"fan_out": plans, "plans": len(plans)})

    @property
    def plan_id(self) -> str:
        assert self.run.item, "a per-plan stage runs with its plan as the item"
        return self.run.item

    def _log_activity(self, status: str, started: str, errors: list[str], payload: str | None) -> None:
        self._ijoin().log_activity(
            {
                "type": self.activity_type,
                "plan_id": self.plan_id,
                "status": status,
                "started_at": started,
                "finished_at": datetime.now(UTC).isoformat(),
                "errors": errors,
                "payload_url": payload,
            }
        )

    def status_for(self, errors: int, failed: bool, warnings: list[str]) -> RunStatus:
        if failed:
            return RunStatus.FAILED
        if errors:
            # Some plans failed (each with its reasons in the summary and the error file), the others
            # synced: the run is marked failed so that someone looks.
            return RunStatus.COMPLETED_WITH_ERRORS
        return RunStatus.SUCCESSFUL_WITH_WARNINGS if warnings else RunStatus.SUCCESSFUL

    def build_summary(self, end: Any = None) -> tuple[RunSummary, list[str]]:
        summary, parts = super().build_summary(end)
        deliver = self.run.results.get("deliver")
        done = {d["plan_id"]: d for d in (deliver.details.get("items", [deliver.details]) if deliver else [])}
        validate = self.run.results.get("validate")
        plans = validate.details.get("fan_out", []) if validate else []
        summary.outcomes = [
            done.get(
                plan,
                {"plan_id": plan, "status": FAILED, "messages": ["The sync of this plan did not finish."]},
            )
            for plan in plans
        ]
        if plans and len(done) < len(plans) and summary.status != RunStatus.FAILED:
            summary.status = RunStatus.COMPLETED_WITH_ERRORS
        return summary, parts


def _funds(version: dict[str, Any] | None) -> str:
    """A line-up in words: "F10 (open), F40 (closed)"."""
    return ", ".join(
        f"{fund} ({'open' if is_open else 'closed'})" for fund, _t, is_open in sorted(lineup(version))
    )


class PlanSync(IJoinSync):
    integration_name = "iJoin Plan Sync"
    activity_type = "Plan Sync"

    def extract(self) -> StageResult:
        rk = self._recordkeeper()
        plan = rk.plan(self.plan_id)
        staging = self.run.staging
        assert staging is not None
        recordkeeper = {
            "plan": plan,
            "contacts": rk.contacts(self.plan_id),
            "match_tiers": rk.match_tiers(self.plan_id),
            "funds": rk.funds(self.plan_id),
        }
        ijoin_plan = self._ijoin().get_plan(self.plan_id)
        source = staging.write_json_file(f"plans/{self.plan_id}/recordkeeper.json", recordkeeper)
        before = staging.write_json_file(f"plans/{self.plan_id}/ijoin_before.json", ijoin_plan)
        return StageResult(
            stage="extract",
            counters={"records_processed": 1},
            files={"source": source, "source_ijoin": before},
            details={"plan_id": self.plan_id, "source": source.path, "in_ijoin": ijoin_plan is not None},
        )

    def transform(self) -> StageResult:
        staging = self.run.staging
        assert staging is not None
        source = staging.read_json(f"plans/{self.plan_id}/recordkeeper.json")
        ijoin_plan = staging.read_json(f"plans/{self.plan_id}/ijoin_before.json")
        problems = (
            plan_problems(source["plan"], source["funds"])
            if ijoin_plan
            else ["iJoin has no plan with this id: add the plan in iJoin's Advisor Portal first."]
        )
        with self.run.error_file(f"transform-{self.plan_id}") as errors:
            for problem in problems:
                record_error(
                    errors,
                    ErrorRow(
                        record_key=self.plan_id, field="plan", rule="ijoin:plan_validation", reason=problem
                    ),
                    "transform",
                )
        if problems:
            return StageResult(
                stage="transform",
                counters={"error_records": 1},
                files={"errors": errors.manifest},
                details={"plan_id": self.plan_id, "status": FAILED, "messages": problems},
            )
        version = plan_version(source["plan"], source["contacts"], source["match_tiers"], source["funds"])
        payload = without_protected(version, ijoin_plan)
        active = ijoin_plan.get("active") if ijoin_plan else None
        lineup_changed = bool(active) and lineup(payload) != lineup(active)
        staged = staging.write_json_file(f"plans/{self.plan_id}/payload.json", payload)
        path = staged.path
        return StageResult(
            stage="transform",
            files={"payload": staged},
            details={
                "plan_id": self.plan_id,
                "status": "Ready",
                "payload": path,
                "lineup_changed_on_active_plan": lineup_changed,
                "never_activatable": never_activatable(self.plan_id, payload, ijoin_plan)
                if lineup_changed
                else None,
                "left_alone": sorted(set(version) - set(payload)),
            },
        )

    def preview(self, transform: dict[str, Any], payload: dict[str, Any]) -> StageResult:
        """Dry Run: what this plan's sync would send iJoin, and what iJoin would then do with a line-up
        change on an active plan (keep it as a draft for review); no call to iJoin, no review asked."""
        staging = self.run.staging
        assert staging is not None
        ijoin_plan = staging.read_json(f"plans/{self.plan_id}/ijoin_before.json") or {}
        draft = bool(transform.get("lineup_changed_on_active_plan"))
        if draft:
            before, after = _funds(ijoin_plan.get("active")), _funds(payload)
            action = "leave a draft for a plan administrator's review (the fund line-up changed)"
            detail = f"line-up now: {before}; line-up sent: {after}"
        else:
            action = "update the plan's specs and contacts (iJoin applies only what differs)"
            detail = "fields sent: " + ", ".join(sorted(payload))
        if transform.get("never_activatable"):
            detail += f"; {transform['never_activatable']}"
        with staging.text_file(f"plans/{self.plan_id}/preview.csv") as (stream, path):
            writer = SafeCsvWriter(stream)
            writer.writerow(["Plan", "Action", "What would be sent"])
            writer.writerow([self.plan_id, action, detail])
        return StageResult(
            stage="deliver",
            counters={"would_sync_plans": 1, "would_leave_drafts": int(draft)},
            files={"output": StagedFile(path=str(path), rows=1, sha256="")},
            details={
                "plan_id": self.plan_id,
                "status": SUCCESSFUL,
                "result": "dry run: not sent",
                "messages": [f"Dry run: would {action}."],
                "left_alone": transform["left_alone"],
            },
        )

    def deliver(self) -> StageResult:
        started = datetime.now(UTC).isoformat()
        transform = self.run.result("transform").details
        if transform["status"] == FAILED:
            if not self.is_dry_run:  # a dry run writes nothing to iJoin, its activity log included
                self._log_activity(FAILED, started, transform["messages"], None)
            return StageResult(stage="deliver", details={**transform, "result": "not sent"})
        staging = self.run.staging
        assert staging is not None
        payload = staging.read_json(f"plans/{self.plan_id}/payload.json")
        if self.is_dry_run:
            return self.preview(transform, payload)
        answer = self._ijoin().sync_plan(self.plan_id, payload)
        result = answer["result"]
        warnings: list[str] = []
        counters = {"records_updated": int(result in ("updated", "setup_updated")), "drafts_created": 0}
        draft_version = ((answer.get("plan") or {}).get("draft") or {}).get("version_id")
        blocked = transform.get("never_activatable") if result == "draft_created" else None
        if blocked:
            # iJoin keeps the draft (the specs and contacts are in step), but nobody is asked to approve
            # what iJoin would refuse: the warning says what to change.
            counters["drafts_created"] = 1
            warnings.append(blocked)
        elif result == "draft_created":
            counters["drafts_created"] = 1
            warnings.append(
                f"Plan {self.plan_id}: the fund line-up changed on an active plan, so iJoin keeps it as "
                f"draft {draft_version}. A plan administrator approves it in Airflow (Required Actions, "
                "'iJoin Plan Draft Review'); approval activates it for the enrollment site."
            )
        if result == "unchanged":
            counters["records_skipped"] = 1
        status = WITH_WARNINGS if warnings else SUCCESSFUL
        self._log_activity(status, started, warnings, transform["payload"])
        payload_file = self.run.result("transform").files.get("payload")
        return StageResult(
            stage="deliver",
            counters=counters,
            warnings=warnings,
            files={"output": payload_file} if payload_file else {},
            details={
                "plan_id": self.plan_id,
                "status": status,
                "result": result,
                "draft_version_id": draft_version,
                "review_run_id": (
                    review_run_id(self.plan_id, draft_version or "draft")
                    if result == "draft_created" and not blocked
                    else None
                ),
                "never_activatable": bool(blocked),
                "messages": warnings,
                "left_alone": transform["left_alone"],
            },
        )
