"""A worker killed (SIGKILL) in the middle of the iJoin Participant Sync's delivery: one plan delivered,
the next one's batch landed in iJoin but its answer never reached the worker, the last one not started.
The lost task is retried as Airflow retries a task whose heartbeat stopped; iJoin ends with each
participant once, the delivered plan is not sent again, and a cleared deliver sends nothing at all."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.harness import (
    admin,
    airflow_dags_test,
    arm,
    backoff_gaps,
    differing_keys,
    duplicate_count,
    expected_participants,
    ijoin_participants,
    new_log_path,
    outcome_of,
    request_count,
    resume_run,
    running_sandbox,
    runs_of,
    sync_dag,
    tries_of,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("clean_hub_state")]
DAG_ID = "ijoin_participant_sync"
INTEGRATION = "iJoin Participant Sync"
PLANS = ["P0001", "P0004", "P0005"]  # each has one participant whose allocations add up to 95 %


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_sandbox(tmp_path_factory.mktemp("worker-killed"), employees=20) as box:
        yield box


def _puts(sandbox: Any) -> dict[str, int]:
    stats = admin(sandbox.ijoin_url, "GET", "/stats")
    return {p: request_count(stats, "PUT", f"/api/v1/plans/{p}/participants") for p in PLANS}


def _activities(sandbox: Any) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(sandbox.ijoin_state_path)) as conn:
        rows = conn.execute(
            "SELECT plan_id, COUNT(*) FROM ij_activity WHERE type = 'Participant Sync' GROUP BY plan_id"
        )
        return dict(rows.fetchall())


def test_worker_killed_mid_delivery_then_retried_delivers_each_participant_once(
    sandbox: Any, fault_report: Any
) -> None:
    # The second participant batch lands in iJoin, but its answer is held: the worker waits on it.
    arm(sandbox.ijoin_url, status=None, stall=300, method="PUT", path_prefix="/api/v1/plans/", skip=1)
    sync_dag(DAG_ID)
    before = runs_of(DAG_ID)
    log_path = new_log_path(DAG_ID, "killed")
    worker = airflow_dags_test(DAG_ID, {"plan_ids": ",".join(PLANS)}, log_path)
    try:
        wait_until(lambda: sum(_puts(sandbox).values()) >= 2, 300, "the second plan's batch to land")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and anything it started
        worker.wait()
        admin(sandbox.ijoin_url, "DELETE", "/faults")  # the held answer goes to a dead socket
    [run_id] = runs_of(DAG_ID) - before

    killed = outcome_of(DAG_ID, run_id, log_path)
    assert killed.state == "running"
    [lost] = [task for task, (state, _) in killed.tries.items() if state == "running"]
    assert lost.startswith("per_item.deliver[")
    puts_at_kill, activities_at_kill = _puts(sandbox), _activities(sandbox)
    delivered = [p for p in PLANS if activities_at_kill.get(p)]  # delivered and acknowledged
    held = [p for p in PLANS if puts_at_kill[p] and not activities_at_kill.get(p)]
    assert len(delivered) == 1 and len(held) == 1, (puts_at_kill, activities_at_kill)

    # -- the lost task is retried (heartbeat gone → up_for_retry → retried after its delay) ------------
    resumed = resume_run(DAG_ID, run_id, worker_lost=True)

    assert resumed.summary is not None, resumed.tries
    assert resumed.summary["status"] == "Completed with Errors"  # the seeded 95 % allocations, one a plan
    assert resumed.summary["errors"] == len(PLANS)
    assert resumed.tries[lost] == ("success", 2)
    map_index = int(lost.split("[")[1].rstrip("]"))
    [(waited, least)] = backoff_gaps(tries_of(DAG_ID, run_id, "per_item.deliver", map_index))
    assert waited >= least - 0.05, (waited, least)
    puts = _puts(sandbox)
    assert puts[delivered[0]] == 1  # delivered before the kill: not sent again (the journal)
    assert puts[held[0]] == 2  # its answer was lost with the worker: sent again, iJoin upserts
    assert sum(puts.values()) == len(PLANS) + 1
    assert _activities(sandbox) == dict.fromkeys(PLANS, 1)  # one activity entry per plan

    expected = expected_participants(sandbox, PLANS)
    found, keys = ijoin_participants(sandbox, PLANS)
    assert expected and differing_keys(found, expected) == []
    assert duplicate_count(keys) == 0

    # -- every deliver cleared and run again: nothing is sent ----------------------------------------
    again = resume_run(DAG_ID, run_id, clear=("per_item.deliver", "summary"))
    assert again.summary is not None
    # This attempt wrote nothing: what the earlier attempts wrote is reported as already delivered.
    assert again.summary["records_created"] == again.summary["records_updated"] == 0
    delivered = resumed.summary["records_created"] + resumed.summary["records_updated"]
    assert again.summary["already_delivered"] == delivered + resumed.summary.get("already_delivered", 0)
    for counter in ("records_skipped", "errors"):
        assert again.summary[counter] == resumed.summary[counter], counter
    assert _puts(sandbox) == puts and _activities(sandbox) == dict.fromkeys(PLANS, 1)
    found_again, keys_again = ijoin_participants(sandbox, PLANS)
    assert found_again == found

    fault_report.add(
        "worker SIGKILLed mid-delivery, task retried", INTEGRATION,
        f"{resumed.summary['status']} ({len(PLANS)} seeded 95 % allocations); lost deliver retried (try 2)",
        len(expected), len(found), duplicate_count(keys),
        note=f"the batch whose answer died with the worker ({held[0]}) was sent again and iJoin answered "
        "unchanged; the plan delivered before the kill was not sent again",
    )  # fmt: skip
    fault_report.add(
        "deliver cleared and re-run (every plan)", INTEGRATION,
        "no request sent; summary counts unchanged", len(expected), len(found_again),
        duplicate_count(keys_again), exactly_once=True,
    )  # fmt: skip
