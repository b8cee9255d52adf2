"""Recordkeeper → iJoin syncs and the enrollment write-back, run for real (dag.test) against the
sandbox's recordkeeper database and iJoin API."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest
import requests

from hub_sandbox.recordkeeper import special_participants, special_plans
from tests.e2e.conftest import run_dag

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
PLAN_SYNC, PARTICIPANT_SYNC, WRITEBACK = (
    "ijoin_plan_sync",
    "ijoin_participant_sync",
    "ijoin_enrollment_writeback",
)
PLANS = {case: ids[0] for case, ids in special_plans(6).items()}
PEOPLE = special_participants(6, 30)


def ijoin(sandbox: Any, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {sandbox.info['ijoin_api_key']}"}
    response = requests.request(method, f"{sandbox.ijoin_url}{path}", headers=headers, timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()["data"]


def admin(sandbox: Any, path: str) -> Any:
    response = requests.get(f"{sandbox.ijoin_url}{path}", timeout=10)
    response.raise_for_status()
    body = response.json()
    return body.get("data", body)


def outcomes(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["plan_id"]: o for o in summary["outcomes"]}


def test_plan_sync_per_plan_statuses_drafts_and_protected_fields(sandbox: Any) -> None:
    before = {p: ijoin(sandbox, "GET", f"/api/v1/plans/{p}") for p in (PLANS["lineup_changed"], "P0001")}

    outcome = run_dag(PLAN_SYNC, {})

    summary = outcome.summary
    by_plan = outcomes(summary)
    assert set(by_plan) == {f"P{k:04d}" for k in range(1, 7)}
    # Mapped tasks are labelled by plan in the grid and the logs, not [0]...[5].
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        labels = {
            ti.rendered_map_index
            for ti in session.query(TaskInstance).filter_by(dag_id=PLAN_SYNC, run_id=outcome.run_id)
            if ti.task_id == "per_item.deliver"
        }
    assert labels == set(by_plan)
    # Each failed plan has one log line with its reason.
    from tests.e2e.conftest import TASK_LOG_DIR

    log = sorted((TASK_LOG_DIR / PLAN_SYNC).iterdir())[-1].read_text()
    assert (
        f"plan {PLANS['no_ein']}: Failed: " in log
        and "EIN" in log.split(f"plan {PLANS['no_ein']}: Failed: ")[1]
    )
    # Plans with validation errors fail alone, with their reasons; the others go on.
    assert by_plan[PLANS["no_ein"]]["status"] == "Failed"
    assert any("EIN" in m for m in by_plan[PLANS["no_ein"]]["messages"])
    assert by_plan[PLANS["fund_without_ticker"]]["status"] == "Failed"
    assert any("no ticker" in m for m in by_plan[PLANS["fund_without_ticker"]]["messages"])
    assert summary["status"] == "Completed with Errors" and outcome.state == "failed"
    assert summary["errors"] == 2
    # A line-up change on an active plan: a draft, Successful with warnings, the active version untouched.
    changed = PLANS["lineup_changed"]
    assert by_plan[changed]["status"] == "Successful with warnings"
    assert by_plan[changed]["result"] == "draft_created"
    assert summary["drafts_created"] == 1
    after = ijoin(sandbox, "GET", f"/api/v1/plans/{changed}")
    assert after["active"] == before[changed]["active"]
    assert after["draft"] is not None
    assert {f["fund_id"] for f in after["draft"]["funds"]} != {f["fund_id"] for f in after["active"]["funds"]}
    # A new plan (being set up in iJoin) gets its first sync.
    assert by_plan[PLANS["new_plan"]]["status"] == "Successful"
    assert by_plan[PLANS["new_plan"]]["result"] == "setup_updated"
    # "Do not override" fields and a locked default investment are never sent.
    for plan_id in ("P0001", changed, PLANS["default_investment_locked"]):
        for sync in admin(sandbox, f"/sandbox/plans/{plan_id}/syncs"):
            assert "phone_contact" not in sync["fields"]
    locked = PLANS["default_investment_locked"]
    assert all(
        "default_investment" not in s["fields"] for s in admin(sandbox, f"/sandbox/plans/{locked}/syncs")
    )
    assert ijoin(sandbox, "GET", f"/api/v1/plans/{locked}")["active"]["default_investment"] == "F001"
    assert (
        ijoin(sandbox, "GET", "/api/v1/plans/P0001")["active"]["phone_contact"]
        == before["P0001"]["active"]["phone_contact"]
    )
    # Every file read and sent is listed: each plan's recordkeeper data, and the payload of each plan sent.
    read = [f for f in summary["source_files"] if f.endswith("/recordkeeper.json")]
    assert {f.rsplit("/", 2)[-2] for f in read} == set(by_plan)
    sent = summary["output_files"]
    assert sent[0] == summary["output_file"] and all(f.endswith("/payload.json") for f in sent)
    assert {f.rsplit("/", 2)[-2] for f in sent} == {p for p, o in by_plan.items() if o["status"] != "Failed"}
    # Every plan's outcome is in iJoin's activity log.
    activity = ijoin(sandbox, "GET", "/api/v1/activity", params={"type": "Plan Sync"})
    entries = activity["activities"]
    assert {e["plan_id"] for e in entries} >= set(by_plan)


def test_plan_sync_rerun_changes_nothing_and_narrowed_run(sandbox: Any) -> None:
    run_dag(PLAN_SYNC, {"plan_ids": "P0001"})
    again = run_dag(PLAN_SYNC, {"plan_ids": "P0001"})
    assert again.summary["status"] == "Successful"
    assert outcomes(again.summary)["P0001"]["result"] == "unchanged"
    refused = run_dag(PLAN_SYNC, {"plan_ids": "P9999"})
    assert refused.summary["status"] == "Failed" and "plan_ids" in refused.summary["failure_reason"]


def test_refused_allocations_are_left_out_so_ijoin_keeps_the_ones_it_has(sandbox: Any) -> None:
    run_dag(PARTICIPANT_SYNC, {"plan_ids": "P0001"})
    good = "P0001-000001"
    held = admin(sandbox, f"/sandbox/participants/P0001/{good}")["body"]["allocations"]
    assert held and sum(float(a["pct"]) for a in held) == 100
    with sqlite3.connect(sandbox.recordkeeper_db_path) as db:  # the recordkeeper's allocations go wrong
        db.execute(
            "UPDATE rk_allocation SET pct = pct / 2 WHERE plan_id = 'P0001' AND participant_id = ?", (good,)
        )

    outcome = run_dag(PARTICIPANT_SYNC, {"plan_ids": "P0001"})

    assert f"P0001/{good}" in {row["record_key"] for row in outcome.error_rows()}
    after = admin(sandbox, f"/sandbox/participants/P0001/{good}")["body"]
    assert after["allocations"] == held  # not cleared by an empty list
    assert after["sync_status"] == "Synchronized with warnings"
    assert any("iJoin keeps the ones it has" in m for m in after["sync_messages"])


def test_a_lineup_ijoin_could_never_activate_warns_what_to_change_and_asks_no_review(sandbox: Any) -> None:
    import sqlite3

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    locked = PLANS["default_investment_locked"]
    held = ijoin(sandbox, "GET", f"/api/v1/plans/{locked}")["active"]["default_investment"]
    with sqlite3.connect(sandbox.recordkeeper_db_path) as db:  # the recordkeeper closes iJoin's default
        db.execute("UPDATE rk_fund SET is_open = 0 WHERE plan_id = ? AND fund_id = ?", (locked, held))

    outcome = run_dag(PLAN_SYNC, {"plan_ids": locked})

    plan = outcomes(outcome.summary)[locked]
    assert plan["status"] == "Successful with warnings" and plan["result"] == "draft_created"
    assert plan["never_activatable"] and plan["review_run_id"] is None
    assert f"closes {held}" in plan["messages"][0] and f"Keep {held} open" in plan["messages"][0]
    with create_session() as session:
        reviews = session.query(DagRun).filter_by(dag_id="ijoin_plan_draft_review").all()
    assert not [r for r in reviews if (r.conf or {}).get("plan_id") == locked]


def test_participant_sync_before_plan_sync_is_refused_for_that_plan(sandbox: Any) -> None:
    new_plan = PLANS["new_plan"]
    outcome = run_dag(PARTICIPANT_SYNC, {"plan_ids": f"P0001,{new_plan}"})
    by_plan = outcomes(outcome.summary)
    assert by_plan[new_plan]["status"] == "Failed"
    assert "run Plan Sync first" in by_plan[new_plan]["messages"][0]
    assert by_plan["P0001"]["status"] in ("Successful", "Successful with warnings")


def test_participant_sync_rules_and_rerun(sandbox: Any) -> None:
    variable = PLANS["variable_pay"]
    outcome = run_dag(PARTICIPANT_SYNC, {"plan_ids": f"P0001,{variable}"})
    summary = outcome.summary
    assert summary["records_created"] == 60
    # Allocations not adding up to 100%: reported per participant, the run Completed with Errors.
    errors = {row["record_key"] for row in outcome.error_rows()}
    assert errors == {f"P0001/{p}" for p in PEOPLE["allocations_not_100"] if p.startswith("P0001")} | {
        f"{variable}/{p}" for p in PEOPLE["allocations_not_100"] if p.startswith(variable)
    }
    assert summary["status"] == "Completed with Errors"

    def participant(plan_id: str, participant_id: str) -> dict[str, Any]:
        row = admin(sandbox, f"/sandbox/participants/{plan_id}/{participant_id}")
        return {**row, **row["body"]}

    bad = next(p for p in PEOPLE["allocations_not_100"] if p.startswith("P0001"))
    assert participant("P0001", bad)["sync_status"] == "Synchronized with warnings"
    # Every participant synced with warnings is named in the summary's warnings, with its reason.
    warned = [w for w in summary["warnings"] if ", participant " in w]
    assert len(warned) == summary["participants_with_warnings"] > len(errors)  # pay frequency ones too
    assert f"Plan P0001, participant {bad}: " in " ".join(warned) and "Allocations were not sent" in " ".join(
        warned
    )
    # Pay frequency: the plan's code; 'V' = the most frequent of the last 3 months.
    assert participant("P0001", "P0001-000001")["pay_frequency"] == "Biweekly"
    varying = next(p for p in PEOPLE["variable_pay_participant"])
    assert participant(variable, varying)["pay_frequency"] in ("Biweekly", "B")
    # Salary fallback: census → computed → prior plan year → 0.
    with sqlite3.connect(sandbox.recordkeeper_db_path) as conn:
        conn.row_factory = sqlite3.Row
        rk = {
            r["participant_id"]: dict(r)
            for r in conn.execute("SELECT * FROM rk_participant WHERE plan_id = 'P0001'")
        }
    missing = next(p for p in PEOPLE["missing_salary"] if p.startswith("P0001"))
    assert float(participant("P0001", missing)["annual_salary"]) == float(
        rk[missing]["computed_compensation"]
    )
    prior = next(p for p in PEOPLE["prior_year_only"] if p.startswith("P0001"))
    assert float(participant("P0001", prior)["annual_salary"]) == float(rk[prior]["prior_year_compensation"])
    nothing = next(p for p in PEOPLE["no_salary_at_all"] if p.startswith("P0001"))
    assert float(participant("P0001", nothing)["annual_salary"]) == 0.0

    rerun = run_dag(PARTICIPANT_SYNC, {"plan_ids": f"P0001,{variable}"})
    assert rerun.summary["records_created"] == 0 and rerun.summary["records_updated"] == 0
    assert rerun.summary["records_skipped"] == 60


def test_writeback_applies_each_election_exactly_once(sandbox: Any) -> None:
    pending = ijoin(sandbox, "GET", "/api/v1/elections", params={"status": "pending"})["elections"]
    assert len(pending) == 3
    # iJoin fails to take "sent" for a while: the elections are applied, but stay pending there.
    fault = {"status": 500, "count": 1000, "path_prefix": "/api/v1/elections/"}
    requests.post(f"{sandbox.ijoin_url}/sandbox/faults", json=fault, timeout=10).raise_for_status()
    first = run_dag(WRITEBACK, {})
    assert first.state == "failed"
    requests.delete(f"{sandbox.ijoin_url}/sandbox/faults", timeout=10)

    # A dry run now: the preview says what the next run does; nothing is applied or marked sent.
    def recordkeeper() -> set[tuple[Any, ...]]:
        with sqlite3.connect(sandbox.recordkeeper_db_path) as conn:
            tables = ("rk_applied_election", "rk_contribution_rate", "rk_allocation")
            return {(t, *row) for t in tables for row in conn.execute(f"SELECT * FROM {t}")}

    def pending_now() -> Any:
        return ijoin(sandbox, "GET", "/api/v1/elections", params={"status": "pending"})

    held, still_pending = recordkeeper(), pending_now()
    dry = run_dag(WRITEBACK, {"dry_run": True})
    assert dry.summary["dry_run"] is True and dry.summary["status"] == "Successful"
    assert (dry.summary["would_apply"], dry.summary["would_only_mark_sent"]) == (2, 1)
    assert recordkeeper() == held
    assert pending_now() == still_pending
    previewed = {r["Election"]: r for r in preview_rows(dry.summary)}
    assert set(previewed) == {"EL000001", "EL000002", "EL000003"}
    assert previewed["EL000001"]["Action"] == "mark sent in iJoin (applied before)"
    rate = next(r for r in previewed.values() if r["Participant"] == "P0001-000002")
    assert re.fullmatch(r"pre-tax 8(\.0+)?%, Roth 2(\.0+)?%, after-tax 0(\.0+)?%", rate["Change"])

    # The first election was applied before "sent" failed; the run stopped there.
    second = run_dag(WRITEBACK, {})
    assert second.summary["status"] == "Successful"
    assert second.summary["already_applied"] == 1 and second.summary["records_created"] == 2
    assert ijoin(sandbox, "GET", "/api/v1/elections", params={"status": "pending"})["elections"] == []
    with sqlite3.connect(sandbox.recordkeeper_db_path) as conn:
        applied = conn.execute(
            "SELECT election_id, COUNT(*) FROM rk_applied_election GROUP BY election_id"
        ).fetchall()
        rates = conn.execute(
            "SELECT pretax_pct, roth_pct, aftertax_pct FROM rk_contribution_rate "
            "WHERE plan_id = 'P0001' AND participant_id = 'P0001-000002'"
        ).fetchone()
    assert sorted(applied) == [("EL000001", 1), ("EL000002", 1), ("EL000003", 1)]
    assert [float(v) for v in rates] == [8.0, 2.0, 0.0]

    third = run_dag(WRITEBACK, {})
    assert third.summary["records_processed"] == 0 and third.summary["status"] == "Successful"


def test_a_new_plan_in_ijoin_starts_its_own_plan_sync(sandbox: Any) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    def plan_sync_runs() -> dict[str, dict[str, Any]]:
        with create_session() as session:
            return {r.run_id: dict(r.conf or {}) for r in session.query(DagRun).filter_by(dag_id=PLAN_SYNC)}

    before = plan_sync_runs()
    watch = run_dag("ijoin_new_plan_watch", {})
    assert watch.task_states["sync_new_plans"] == "success"
    started = [conf for run_id, conf in plan_sync_runs().items() if run_id not in before]
    assert started == [{"plan_ids": PLANS["new_plan"]}]
    # Handed over once: the next check finds nothing new.
    again = run_dag("ijoin_new_plan_watch", {})
    assert again.task_states["sync_new_plans"] == "skipped"


def test_plans_grouped_into_fewer_tasks_sync_as_they_do_one_task_each(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more plans than [benefits_hub] fan_out_tasks, each mapped task works through a group of
    plans: every plan keeps its own outcome (a plan iJoin lacks fails alone, with its reason), the logs
    name the plan on each line, and iJoin ends as one task per plan leaves it."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    new_plan = PLANS["new_plan"]
    plans = ["P0001", "P0002", new_plan]
    run_dag(PLAN_SYNC, {"plan_ids": "P0001,P0002"})
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__FAN_OUT_TASKS", "2")
    grouped = run_dag(PARTICIPANT_SYNC, {"plan_ids": ",".join(plans)})

    with create_session() as session:
        labels = sorted(
            ti.rendered_map_index
            for ti in session.query(TaskInstance).filter_by(
                dag_id=PARTICIPANT_SYNC, run_id=grouped.run_id, task_id="per_item.deliver"
            )
        )
    assert labels == sorted(["P0001 to P0002", new_plan])  # three plans, two tasks
    by_plan = outcomes(grouped.summary)
    assert list(by_plan) == plans
    assert (
        by_plan[new_plan]["status"] == "Failed" and "run Plan Sync first" in by_plan[new_plan]["messages"][0]
    )
    assert all(by_plan[p]["status"] in ("Successful", "Successful with warnings") for p in plans[:2])
    assert grouped.summary["records_created"] == 60
    assert "[P0002] " in grouped.log and "(2 of 2 in this task)" in grouped.log

    # One task per plan again: iJoin already holds exactly what the grouped run sent.
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__FAN_OUT_TASKS", "16")
    again = run_dag(PARTICIPANT_SYNC, {"plan_ids": "P0001,P0002"})
    assert again.summary["records_skipped"] == 60
    assert again.summary["records_created"] == again.summary["records_updated"] == 0


def ijoin_state(sandbox: Any) -> dict[str, set[tuple[Any, ...]]]:
    """Everything iJoin holds (plans, versions, syncs, participants, activity, elections), as sets of
    rows: its request log aside, since a dry run reads."""
    tables = ("ij_plan", "ij_plan_version", "ij_plan_sync", "ij_participant", "ij_activity", "ij_election")
    with sqlite3.connect(sandbox.ijoin_state_path) as conn:
        return {table: set(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in tables}


def review_runs() -> int:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(DagRun).filter_by(dag_id="ijoin_plan_draft_review").count()


def preview_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    import csv
    from pathlib import Path

    rows: list[dict[str, str]] = []
    for path in summary.get("output_files") or [summary["output_file"]]:
        with Path(path.removeprefix("file://")).open(newline="") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def test_dry_runs_of_both_syncs_send_nothing_ask_no_review_and_preview_what_the_real_runs_do(
    sandbox: Any,
) -> None:
    held, reviews = ijoin_state(sandbox), review_runs()
    dry = run_dag(PLAN_SYNC, {"dry_run": True})
    summary = dry.summary
    assert summary["dry_run"] is True
    assert ijoin_state(sandbox) == held and review_runs() == reviews  # nothing sent, nobody asked
    by_plan = {row["Plan"]: row for row in preview_rows(summary)}
    changed = PLANS["lineup_changed"]
    assert "draft" in by_plan[changed]["Action"] and "line-up sent:" in by_plan[changed]["What would be sent"]
    assert PLANS["no_ein"] not in by_plan  # a failing plan still fails, with its reasons
    assert outcomes(summary)[PLANS["no_ein"]]["status"] == "Failed"

    real = run_dag(PLAN_SYNC, {})
    sent = real.summary
    assert sent["drafts_created"] == summary["would_leave_drafts"] == 1
    synced = sent["records_updated"] + sent["records_skipped"] + sent["drafts_created"]
    assert synced == summary["would_sync_plans"] == len(by_plan)

    held = ijoin_state(sandbox)
    dry = run_dag(PARTICIPANT_SYNC, {"plan_ids": "P0001", "dry_run": True})
    assert ijoin_state(sandbox) == held
    rows = preview_rows(dry.summary)
    assert len(rows) == dry.summary["would_send_participants"] > 0
    assert all(re.search(r"birth_date: \*{4}-\*{2}-\*{2}", r["Fields and values to send"]) for r in rows)
    real = run_dag(PARTICIPANT_SYNC, {"plan_ids": "P0001"})
    done = real.summary
    sent_count = done["records_created"] + done["records_updated"] + done["records_skipped"]
    assert sent_count == len(rows)
