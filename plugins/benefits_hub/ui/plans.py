"""The Plan Summary's rules (no Airflow, no I/O): one row per iJoin plan with its last Plan Sync and
Participant Sync, its waiting draft review, and a plan's participants with their synchronization status.

As iJoin's advisor portal has it (seed 001): the plan list comes from iJoin itself; what the hub did for
each plan comes from the Run Summaries' per-plan ``outcomes`` (a run that synced several plans counts
for each of them); a waiting review is a draft-review run not finished yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benefits_hub.ui import urls
from benefits_hub.ui.activity import RunFacts, run_status

PLAN_SYNC_DAG_ID = "ijoin_plan_sync"
PARTICIPANT_SYNC_DAG_ID = "ijoin_participant_sync"
REVIEW_DAG_ID = "ijoin_plan_draft_review"
# The two buttons of a plan's row: which sync, in the words on the button.
SYNC_KINDS = {"plan": PLAN_SYNC_DAG_ID, "participants": PARTICIPANT_SYNC_DAG_ID}


@dataclass(frozen=True)
class PlanSyncFacts:
    """One plan's part of a sync run: when, which run, its status and why."""

    dag_id: str
    run_id: str
    at: datetime | None
    status: str
    reason: str = ""


@dataclass(frozen=True)
class PlanRow:
    plan_id: str
    plan_name: str
    ijoin_status: str  # setup / active, as iJoin says
    has_draft: bool
    plan_sync: PlanSyncFacts | None = None
    participant_sync: PlanSyncFacts | None = None
    review_run_id: str | None = None  # a draft review still waiting for a person
    in_progress: tuple[str, ...] = field(default_factory=tuple)  # dag ids of syncs of it running now
    held_path: str | None = None  # a sync of it held for approval: its request in Required Actions


@dataclass(frozen=True)
class ParticipantRow:
    participant_id: str
    name: str
    status: str
    reasons: tuple[str, ...]
    updated_at: str = ""


def _plan_outcomes(run: RunFacts) -> dict[str, dict[str, Any]]:
    return {
        str(o.get("plan_id")): o
        for o in ((run.summary or {}).get("outcomes") or [])
        if isinstance(o, dict) and o.get("plan_id")
    }


def _reason(outcome: Mapping[str, Any]) -> str:
    messages = [str(m) for m in outcome.get("messages") or [] if m]
    return " ".join(messages)


def latest_per_plan(runs: Iterable[RunFacts]) -> dict[str, PlanSyncFacts]:
    """For each plan, the newest finished run that synced it (its per-plan status, not the run's). A
    dry run synced nothing, so it is never a plan's last sync."""
    found: dict[str, PlanSyncFacts] = {}
    finished = [
        r for r in runs if r.summary and r.end_date is not None and r.summary.get("dry_run") is not True
    ]
    for run in sorted(finished, key=lambda r: r.end_date or datetime.min, reverse=True):
        for plan_id, outcome in _plan_outcomes(run).items():
            if plan_id not in found:
                found[plan_id] = PlanSyncFacts(
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    at=run.end_date,
                    status=str(outcome.get("status") or run_status(run.state, run.summary)),
                    reason=_reason(outcome),
                )
    return found


def running_per_plan(
    runs: Iterable[RunFacts], conf_of: Mapping[tuple[str, str], Mapping[str, Any]]
) -> dict[str, set[str]]:
    """Plans with a sync queued or running now: {plan_id: {dag_id}} (a run for every plan counts as
    ``*``)."""
    busy: dict[str, set[str]] = {}
    for run in runs:
        if run.state not in ("queued", "running"):
            continue
        for plan_id in _plans_of(conf_of.get((run.dag_id, run.run_id))):
            busy.setdefault(plan_id, set()).add(run.dag_id)
    return busy


def held_per_plan(
    runs: Iterable[RunFacts], conf_of: Mapping[tuple[str, str], Mapping[str, Any]]
) -> dict[str, str]:
    """Plans whose sync waits for a person's answer (its circuit breaker held the delivery): {plan_id:
    the Airflow UI's Required Actions path of that request} (``*``: a run for every plan)."""
    held: dict[str, str] = {}
    for run in runs:
        if run.awaiting is None or run.state not in ("queued", "running"):
            continue
        path = urls.airflow_required_action_path(run.dag_id, run.run_id, *run.awaiting)
        for plan_id in _plans_of(conf_of.get((run.dag_id, run.run_id))):
            held.setdefault(plan_id, path)
    return held


def _plans_of(conf: Mapping[str, Any] | None) -> list[str]:
    """The plans a sync's conf names (``plan_ids``), or ``["*"]``: every plan."""
    wanted = str((conf or {}).get("plan_ids") or "").strip()
    return [p.strip() for p in wanted.split(",") if p.strip()] or ["*"]


def plan_rows(
    ijoin_plans: Sequence[Mapping[str, Any]],
    plan_syncs: Mapping[str, PlanSyncFacts],
    participant_syncs: Mapping[str, PlanSyncFacts],
    waiting_reviews: Mapping[str, str],
    busy: Mapping[str, set[str]] | None = None,
    held: Mapping[str, str] | None = None,
) -> list[PlanRow]:
    busy, held = busy or {}, held or {}
    rows = []
    for plan in sorted(ijoin_plans, key=lambda p: str(p.get("plan_id"))):
        plan_id = str(plan.get("plan_id") or "")
        running = set(busy.get(plan_id, set())) | set(busy.get("*", set()))
        rows.append(
            PlanRow(
                plan_id=plan_id,
                plan_name=str(plan.get("plan_name") or ""),
                ijoin_status=str(plan.get("status") or ""),
                has_draft=bool(plan.get("has_draft")),
                plan_sync=plan_syncs.get(plan_id),
                participant_sync=participant_syncs.get(plan_id),
                review_run_id=waiting_reviews.get(plan_id),
                in_progress=tuple(sorted(running)),
                held_path=held.get(plan_id) or held.get("*"),
            )
        )
    return rows


def participant_rows(
    ijoin_participants: Iterable[Mapping[str, Any]], refused: Iterable[Mapping[str, str]] = ()
) -> list[ParticipantRow]:
    """iJoin's participants of a plan with the status and reasons iJoin holds, then those the last
    Participant Sync could not deliver (from its error file: not in iJoin, or not updated there)."""
    rows = [
        ParticipantRow(
            participant_id=str(p.get("participant_id") or ""),
            name=" ".join(str(p.get(k) or "") for k in ("first_name", "last_name")).strip(),
            status=str(p.get("sync_status") or ""),
            reasons=tuple(str(m) for m in p.get("sync_messages") or []),
            updated_at=str(p.get("updated_at") or ""),
        )
        for p in ijoin_participants
    ]
    known = {row.participant_id: i for i, row in enumerate(rows)}
    for error in refused:
        participant_id = str(error.get("record_key") or "").split("/")[-1]
        reason = str(error.get("reason") or "")
        if participant_id in known:
            row = rows[known[participant_id]]
            rows[known[participant_id]] = ParticipantRow(
                row.participant_id, row.name, row.status, (*row.reasons, reason), row.updated_at
            )
        else:
            rows.append(ParticipantRow(participant_id, "", "Not synchronized", (reason,)))
            known[participant_id] = len(rows) - 1
    return sorted(rows, key=lambda r: r.participant_id)
