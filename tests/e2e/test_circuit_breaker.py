"""The circuit breaker, end to end: a mass change holds delivery until a person answers through Airflow's
human-in-the-loop REST API (a real api-server on this session's metadata DB), with the run itself
through ``dag.test()`` against the sandbox's real servers. Reject sends nothing and keeps the window;
approve sends the change exactly once.

The same decision clicked in Required Actions is the browser journey's
(``tests/e2e/test_clerk_journeys_browser.py``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from tests.e2e.conftest import run_dag
from tests.e2e.test_deductions_import import (
    CURRENT_YEAR_INITIAL,
    FAILING,
    change_coverages,
    deductions,
    plansource_coverages,
)
from tests.e2e.test_demographic_export import (
    _special,
    changes_for,
    hcm_edit,
    plansource_rows,
    plansource_writes,
    wait_for_census,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
EXPORT, IMPORT = "plansource_hcm_demographic_export", "plansource_deductions_import"
LEAVING = {"employee_status_code": "T", "termination_date": "2026-12-04", "termination_reason_code": "RESIGN"}


@contextmanager
def answering(api: str, dag_id: str, choice: str, reason: str = "") -> Iterator[dict[str, Any]]:
    """While the block runs, answer the DAG's first open human-in-the-loop request with ``choice``, as
    Required Actions would; yields what the approver was shown (subject, body) once asked.

    An api-server call that fails (SQLite is busy with the run's own writes, say) is tried again: a
    thread that died here would leave the held run waiting (run_dag then fails it after its limit)."""
    shown: dict[str, Any] = {}
    errors: list[str] = []
    done = threading.Event()

    def pending() -> list[dict[str, Any]]:
        answer = requests.get(
            f"{api}/api/v2/dags/{dag_id}/dagRuns/~/hitlDetails",
            params={"response_received": "false"},
            timeout=10,
        )
        answer.raise_for_status()
        return list(answer.json()["hitl_details"])

    def key(detail: dict[str, Any]) -> tuple[str, str, int]:
        ti = detail["task_instance"]
        return ti["dag_run_id"], ti["task_id"], ti["map_index"]

    # A request left open before the block (an earlier test's run that nobody answered, failed by
    # run_dag's limit) is never this block's to answer: only a run started inside it is.
    stale: set[tuple[str, str, int]] = set()
    for _attempt in range(20):
        try:
            stale = {key(detail) for detail in pending()}
            break
        except requests.RequestException as error:
            errors.append(f"{type(error).__name__}: {error}")
            time.sleep(0.5)

    def answer_once() -> bool:
        for detail in pending():
            # Only once the task is parked: an answer given while it is still deferring (30 ms after its
            # request appeared, in one failed run) is recorded, but only the triggerer would resume the
            # task then, and dag.test() runs none; a person sees the request only once it waits.
            if key(detail) in stale or detail["task_instance"].get("state") != "awaiting_input":
                continue
            run_id, task_id, map_index = key(detail)
            requests.patch(
                f"{api}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails",
                json={"chosen_options": [choice], "params_input": {"reason": reason}},
                timeout=10,
            ).raise_for_status()
            shown.update(detail)
            return True
        return False

    def answer() -> None:
        while not done.is_set():
            try:
                if answer_once():
                    return
            except (requests.RequestException, KeyError, ValueError) as error:
                errors.append(f"{type(error).__name__}: {error}")
            done.wait(0.5)

    worker = threading.Thread(target=answer, daemon=True)
    worker.start()
    try:
        yield shown
    except AssertionError as failure:  # run_dag's limit: say what the api-server answered meanwhile
        if not shown:
            failure.add_note(f"the answer was never given; the api-server said: {errors[-3:]}")
        raise
    finally:
        done.set()
        worker.join(timeout=15)
    if not shown and errors:
        raise AssertionError(f"the answer was never given; the api-server said: {errors[-3:]}")


def watermark(dag_id: str) -> str | None:
    from airflow.models.variable import Variable

    return Variable.get(f"benefits_hub.{dag_id}.watermark", default_var=None)


def active_good_employees(sandbox: Any) -> list[str]:
    """Active employees with nothing planted on them (each one the export sends cleanly)."""
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        rows = conn.execute(
            "SELECT person_number FROM hcm_employment WHERE is_primary = 1 AND employee_status_code = 'A' "
            "ORDER BY person_number"
        ).fetchall()
    return [number for (number,) in rows if number not in _special]


def test_a_mass_termination_holds_the_export_reject_sends_nothing_and_approve_sends_it_once(
    sandbox: Any, plansource_admin: Any, api_server: str
) -> None:
    baseline = run_dag(EXPORT, {"delta": True, "lookback_days": 1})
    assert baseline.summary["status"] == "Completed", baseline.summary
    window = watermark(EXPORT)
    active = active_good_employees(sandbox)
    leavers = active[: int(len(active) * 0.3)]  # a bad HCM load: 30 % of the active people terminated
    hcm_edit(sandbox, leavers, LEAVING)
    held, writes = plansource_rows(sandbox), plansource_writes(plansource_admin)

    with answering(api_server, EXPORT, "Reject", "The HCM load of 4 December is wrong") as shown:
        rejected = run_dag(EXPORT, {"delta": True})

    # What the approver read: the threshold, the counts by kind of change, a sample without values.
    assert shown["subject"] == "Delivery held: PlanSource HCM Demographic Export"
    assert "Hold if Terminations Exceed (%)" in shown["body"]
    assert f"| Terminations | {len(leavers)} |" in shown["body"]
    assert leavers[0] in shown["body"] and "2026-12-04" not in shown["body"]
    # Reject: Failed with the threshold and the reason; nothing sent; the window where it was.
    summary = rejected.summary
    assert rejected.state == "failed" and summary["status"] == "Failed", summary
    assert rejected.task_states["hold"] == "failed" and rejected.task_states["deliver"] == "upstream_failed"
    assert f"{len(leavers)} of " in summary["failure_reason"]
    assert "above the 2% limit" in summary["failure_reason"]
    assert "The HCM load of 4 December is wrong" in summary["failure_reason"]
    assert plansource_rows(sandbox) == held and plansource_writes(plansource_admin) == writes
    assert watermark(EXPORT) == window

    # The next run holds the same change again; this time it is right, and approved: sent exactly once.
    with answering(api_server, EXPORT, "Approve") as shown:
        approved = run_dag(EXPORT, {"delta": True})

    summary = approved.summary
    assert shown, "the second run was not held"
    assert approved.state == "success" and summary["status"] == "Completed", summary
    assert summary["terminations"] == len(leavers)
    assert summary["warnings"][0].startswith("Delivery held for approval:")
    assert "Approved by" in summary["warnings"][0]
    assert watermark(EXPORT) != window
    for number in leavers:
        assert [c["kind"] for c in changes_for(sandbox, number)].count("terminated") == 1, number
        assert plansource_admin.subscriber(number)["termination_date"] == "2026-12-04"


def test_a_full_run_reading_far_fewer_employees_than_the_last_one_is_held(
    sandbox: Any, plansource_admin: Any, api_server: str
) -> None:
    """A truncated HCM table: nobody is terminated, the people are just missing from the read."""
    first = run_dag(EXPORT, {"delta": False})
    assert first.task_states["deliver"] == "success"
    read = first.summary["records_processed"]
    with sqlite3.connect(sandbox.hcm_db_path) as conn:  # the last fifth of the table did not load
        gone = [n for (n,) in conn.execute("SELECT person_number FROM hcm_person ORDER BY person_number")]
        gone = gone[-len(gone) // 5 :]
        conn.executemany("DELETE FROM hcm_employment WHERE person_number = ?", [(n,) for n in gone])
        conn.executemany("DELETE FROM hcm_person WHERE person_number = ?", [(n,) for n in gone])
    assert wait_for_census(plansource_admin)  # the first run's census, imported by PlanSource
    writes = plansource_writes(plansource_admin)

    with answering(api_server, EXPORT, "Reject", "Load incomplete") as shown:
        held = run_dag(EXPORT, {"delta": False})

    assert "Hold if a Full Run Reads Fewer Employees (%)" in shown["body"]
    assert f"fewer than the {read} of the last successful full run" in held.summary["failure_reason"]
    assert plansource_writes(plansource_admin) == writes
    assert held.task_states["deliver"] == "upstream_failed"  # no census upload either


def test_a_change_within_the_thresholds_is_never_held(sandbox: Any, plansource_admin: Any) -> None:
    """No api-server answers here: a hold would wait for ever. A single termination is 0.5 %."""
    run_dag(EXPORT, {"delta": True, "lookback_days": 1})
    leaver = active_good_employees(sandbox)[0]
    hcm_edit(sandbox, [leaver], LEAVING)
    outcome = run_dag(EXPORT, {"delta": True})
    assert outcome.summary["status"] == "Completed" and outcome.summary["terminations"] == 1
    assert outcome.task_states["hold"] == "success"


def test_a_premium_change_for_every_employee_holds_the_import_reject_writes_nothing_approve_writes_once(
    sandbox: Any, api_server: str
) -> None:
    run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    first = run_dag(IMPORT, {"delta": True})  # nothing new; Completed: the window starts here
    assert first.summary["status"] == "Completed", first.summary
    window = watermark(IMPORT)
    current = plansource_coverages(sandbox, "plan_year = 2026 AND test_employee = 0 AND current = 1")
    repriced = [c for c in current if c["id"] not in FAILING.values() and not c["termination_date"]]
    raised = [{"id": c["id"], "subscriber_premium": f"{float(c['subscriber_premium']) + 7:.2f}"}
              for c in repriced]  # fmt: skip
    change_coverages(sandbox, raised)
    loaded = deductions(sandbox)

    with answering(api_server, IMPORT, "Reject", "Wrong premium table") as shown:
        rejected = run_dag(IMPORT, {"delta": True})

    assert "Hold if Deduction Amounts Change for More Than (%)" in shown["body"]
    assert "| Employees whose amounts change |" in shown["body"]
    summary = rejected.summary
    assert rejected.state == "failed" and summary["status"] == "Failed", summary
    assert "Wrong premium table" in summary["failure_reason"]
    assert deductions(sandbox) == loaded
    assert watermark(IMPORT) == window

    with answering(api_server, IMPORT, "Approve"):
        approved = run_dag(IMPORT, {"delta": True})

    summary = approved.summary
    assert approved.state == "success" and summary["status"] == "Completed", summary
    assert summary["records_updated"] == len(repriced) and summary["records_created"] == 0
    after = {row["plansource_coverage_id"]: row for row in deductions(sandbox).values()}
    assert len(after) == len(loaded)  # updated in place, each once
    for coverage in repriced:
        expected = float(coverage["subscriber_premium"]) + 7
        assert f"{float(after[coverage['id']]['employee_amount']):.2f}" == f"{expected:.2f}"


PARTICIPANT_SYNC = "ijoin_participant_sync"


def ijoin_participants(sandbox: Any, plan_id: str) -> set[tuple[Any, ...]]:
    """Every row iJoin holds for the plan's participants (bodies, statuses, timestamps)."""
    with sqlite3.connect(sandbox.ijoin_state_path) as conn:
        return set(conn.execute("SELECT * FROM ij_participant WHERE plan_id = ?", (plan_id,)).fetchall())


def test_a_mass_termination_in_the_recordkeeper_holds_the_participant_sync_reject_sends_nothing(
    sandbox: Any, api_server: str
) -> None:
    """The same breaker on a sync that fans out per plan: one hold for the whole run, measured against
    what iJoin holds, before any plan is delivered."""
    plan = "P0001"
    run_dag("ijoin_plan_sync", {"plan_ids": plan})
    first = run_dag(PARTICIPANT_SYNC, {"plan_ids": plan})  # iJoin held nobody: never held
    assert first.task_states["hold"] == "success" and first.summary["records_created"] == 30
    with sqlite3.connect(sandbox.recordkeeper_db_path) as conn:
        active = [p for (p,) in conn.execute(
            "SELECT participant_id FROM rk_participant WHERE plan_id = ? AND status = 'A' "
            "ORDER BY participant_id", (plan,))]  # fmt: skip
        leavers = active[: max(int(len(active) * 0.3), 2)]  # a bad load: 30 % of the active terminated
        conn.executemany(
            "UPDATE rk_participant SET status = 'T', termination_date = '2026-12-04' "
            "WHERE plan_id = ? AND participant_id = ?",
            [(plan, p) for p in leavers],
        )
    held = ijoin_participants(sandbox, plan)

    with answering(api_server, PARTICIPANT_SYNC, "Reject", "Wrong recordkeeper file") as shown:
        rejected = run_dag(PARTICIPANT_SYNC, {"plan_ids": plan})

    assert shown["subject"] == "Delivery held: iJoin Participant Sync"
    assert "Hold if Terminations Exceed (%)" in shown["body"]
    assert (
        f"| Terminations (active in iJoin, terminated in the recordkeeper) | {len(leavers)} |"
        in shown["body"]
    )
    assert f"{plan}/{leavers[0]}" in shown["body"] and "2026-12-04" not in shown["body"]
    summary = rejected.summary
    assert rejected.state == "failed" and summary["status"] == "Failed", summary
    assert rejected.task_states["hold"] == "failed"
    assert rejected.task_states["per_item.deliver"] == "upstream_failed"
    assert (
        f"{len(leavers)} of " in summary["failure_reason"]
        and "active participants in iJoin" in (summary["failure_reason"])
    )
    assert "Wrong recordkeeper file" in summary["failure_reason"]
    assert ijoin_participants(sandbox, plan) == held  # nothing sent

    with answering(api_server, PARTICIPANT_SYNC, "Approve") as shown:
        approved = run_dag(PARTICIPANT_SYNC, {"plan_ids": plan})

    assert shown, "the second run was not held"
    assert approved.task_states["per_item.deliver"] == "success", approved.summary
    assert approved.summary["records_updated"] == len(leavers)  # each terminated once, nobody else
    assert approved.summary["warnings"][0].startswith("Delivery held for approval:")
    with sqlite3.connect(sandbox.ijoin_state_path) as conn:
        statuses = dict(conn.execute(
            "SELECT participant_id, json_extract(body, '$.status') FROM ij_participant WHERE plan_id = ?",
            (plan,)))  # fmt: skip
    assert {p for p, status in statuses.items() if status == "T"} >= set(leavers)
    again = run_dag(PARTICIPANT_SYNC, {"plan_ids": plan})  # in step now: nothing to hold, nothing new
    assert again.task_states["hold"] == "success" and again.summary["records_updated"] == 0


def test_a_plan_read_with_far_fewer_participants_than_its_last_sync_is_held(
    sandbox: Any, api_server: str
) -> None:
    """A truncated recordkeeper load: nobody is terminated, a fifth of the plan is just missing."""
    plan = "P0001"
    run_dag("ijoin_plan_sync", {"plan_ids": plan})
    first = run_dag(PARTICIPANT_SYNC, {"plan_ids": plan})
    read = first.summary["records_processed"]
    with sqlite3.connect(sandbox.recordkeeper_db_path) as conn:
        ids = conn.execute("SELECT participant_id FROM rk_participant WHERE plan_id = ? ORDER BY 1", (plan,))
        gone = [p for (p,) in ids][-(read // 5) :]
        conn.executemany("DELETE FROM rk_participant WHERE plan_id = ? AND participant_id = ?",
                         [(plan, p) for p in gone])  # fmt: skip
    held = ijoin_participants(sandbox, plan)

    with answering(api_server, PARTICIPANT_SYNC, "Reject", "Load incomplete") as shown:
        outcome = run_dag(PARTICIPANT_SYNC, {"plan_ids": plan})

    assert "Hold if the Recordkeeper Gives Fewer Participants (%)" in shown["body"]
    reason = outcome.summary["failure_reason"]
    assert (
        f"gave {read - len(gone)} participants, {len(gone)} fewer than the plans' last syncs read ({read})"
        in reason
    )
    assert ijoin_participants(sandbox, plan) == held
