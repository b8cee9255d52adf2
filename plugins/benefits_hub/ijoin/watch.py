"""New plans in iJoin get their first Plan Sync by themselves (the seed: "A Plan Sync runs
automatically when a new Plan is added to iJoin").

A short-interval check: plans iJoin holds in set-up with no sync yet, that the recordkeeper knows,
and that this watcher has not already handed to a Plan Sync (kept in the Airflow Variable
``benefits_hub.ijoin_new_plan_watch.triggered``, so a plan that fails its first sync is not
re-triggered every ten minutes: its failure is in that run's summary).
"""

from __future__ import annotations

import json
from typing import Any

STATE_KEY = "benefits_hub.ijoin_new_plan_watch.triggered"


def new_plans(ijoin: Any, recordkeeper_plan_ids: list[str], already: set[str]) -> list[str]:
    found = []
    for plan in ijoin.list_plans():
        plan_id = plan["plan_id"]
        if plan.get("status") != "setup" or plan_id in already or plan_id not in recordkeeper_plan_ids:
            continue
        details = ijoin.get_plan(plan_id) or {}
        if not details.get("last_sync"):
            found.append(plan_id)
    return sorted(found)


def new_plans_to_sync() -> str:
    """Comma-separated plan ids for ``ijoin_plan_sync``'s ``plan_ids`` (empty: nothing to do)."""
    from airflow.sdk import Variable

    from benefits_hub.hooks.ijoin import IJoinHook
    from benefits_hub.hooks.recordkeeper import RecordkeeperHook

    already = set(json.loads(Variable.get(STATE_KEY, default="[]")))
    found = new_plans(IJoinHook(), RecordkeeperHook().plan_ids(), already)
    if found:
        Variable.set(STATE_KEY, json.dumps(sorted(already | set(found))))
    return ",".join(found)
