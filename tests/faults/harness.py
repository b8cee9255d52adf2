"""What the fault suite shares: real DAG runs (new, resumed after a fault, cleared and re-run), a watcher
that injects a fault when the run's own log says it is time, and the destinations read back as sets.

No mocks: the DAGs run with ``dag.test()`` (as ``airflow dags test`` does) or in an ``airflow dags test``
subprocess, against the sandbox's real servers, HCM and recordkeeper databases.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from tests.e2e.conftest import TASK_LOG_DIR, _capture_output, _remember_ssns
from tests.sandbox_env import sandbox_in_environ

REPO = Path(__file__).resolve().parents[2]
RETRY_DELAY = timedelta(seconds=1)  # what the DAGs' retry_delay is shortened to, as run_dag does
MAX_RETRY_DELAY = timedelta(seconds=2)


# -- the sandbox ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def running_sandbox(directory: Path, employees: int = 200) -> Iterator[Any]:
    """A freshly seeded sandbox whose connections are in ``os.environ`` until it stops (with any change
    a test made to them undone), its people remembered for the whole-suite PII scan."""
    with sandbox_in_environ(directory, employees=employees, seed=42, token_ttl=300) as box:
        _remember_ssns(box.hcm_db_path, box.plansource_state_path, box.recordkeeper_db_path)
        yield box


def set_connection(conn_id: str, **changes: Any) -> None:
    """Change one field (or the extras) of a connection held in ``AIRFLOW_CONN_*``."""
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    conn = json.loads(os.environ[name])
    if "extra" in changes:
        conn["extra"] = {**conn.get("extra", {}), **changes.pop("extra")}
    conn.update(changes)
    os.environ[name] = json.dumps(conn)


def admin(base_url: str, method: str, path: str, **kwargs: Any) -> Any:
    """A sandbox-only route (``/sandbox/...``) of the PlanSource or iJoin app: its ``data``."""
    response = requests.request(method, f"{base_url}/sandbox{path}", timeout=30, **kwargs)
    response.raise_for_status()
    body = response.json()
    return body.get("data", body)


def arm(base_url: str, **fault: Any) -> None:
    admin(base_url, "POST", "/faults", json=fault)


# -- DAG runs ---------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """A DAG run as the metadata DB has it after the fact."""

    dag_id: str
    run_id: str
    state: str
    summary: dict[str, Any] | None
    tries: dict[str, tuple[str, int]]  # task id (``[map index]`` for mapped ones) -> (state, try_number)
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def load_dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(REPO / "dags" / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        # The DAG's retries stay (they are what is tested), not its minutes of waiting.
        task.retry_delay = RETRY_DELAY
        task.max_retry_delay = MAX_RETRY_DELAY
    return dag


def new_log_path(dag_id: str, label: str) -> Path:
    """A task-log file of the e2e log folder, which the PII scan reads (tests/e2e/test_zz_no_pii_in_logs)."""
    folder = TASK_LOG_DIR / dag_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"fault-{label}-{time.time_ns()}.log"


def outcome_of(dag_id: str, run_id: str, log_path: Path) -> Outcome:
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
        tries = {}
        for ti in run.get_task_instances(session=session):
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            tries[key] = (str(ti.state), int(ti.try_number))
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=run_id, task_id="summary", key="return_value")
            .first()
        )
        summary = None
        if row is not None:
            summary = row.value if isinstance(row.value, dict) else json.loads(row.value)
        state = str(run.state)
    return Outcome(dag_id, run_id, state, summary, tries, log_path)


def tries_of(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[tuple[int, Any, Any]]:
    """Each try of a task instance: (try number, start, end), from Airflow's task-instance history."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session

    where = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    with create_session() as session:
        tries = [
            (h.try_number, h.start_date, h.end_date)
            for h in session.query(TaskInstanceHistory).filter_by(**where)
        ]
        ti = session.query(TaskInstance).filter_by(**where).one()
        tries.append((ti.try_number, ti.start_date, ti.end_date))
    return sorted(tries, key=lambda t: t[0])


def backoff_gaps(tries: list[tuple[int, Any, Any]]) -> list[tuple[float, float]]:
    """(seconds waited before each retry, the least the DAG's exponential backoff allows)."""
    gaps = []
    for (number, _, ended), (_, started, _) in itertools.pairwise(tries):
        least = min(RETRY_DELAY.total_seconds() * 2 ** (number - 1), MAX_RETRY_DELAY.total_seconds())
        gaps.append(((started - ended).total_seconds(), least))
    return gaps


def run_dag(dag_id: str, conf: dict[str, Any], log_path: Path | None = None) -> Outcome:
    """One new run with ``dag.test()``, everything it prints going to ``log_path``."""
    dag = load_dag(dag_id)
    log_path = log_path or new_log_path(dag_id, "run")
    with _capture_output(log_path):
        run = dag.test(run_conf=conf)
    return outcome_of(dag_id, run.run_id, log_path)


def resume_run(
    dag_id: str,
    run_id: str,
    *,
    clear: tuple[str, ...] = (),
    worker_lost: bool = False,
    log_path: Path | None = None,
) -> Outcome:
    """Carry an existing run on to the end, as the scheduler would, with ``dag.test()``'s own loop.

    ``worker_lost``: a task left ``running`` by a killed worker goes ``up_for_retry``, as Airflow does
    when its heartbeat stops, and is retried after its retry delay. ``clear``: these tasks (every map
    index) are cleared first, as ``airflow tasks clear`` does, and run again.
    """
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import clear_task_instances
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    dag = load_dag(dag_id)
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    log_path = log_path or new_log_path(dag_id, "resume")
    session = settings.Session()
    try:
        run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
        tis = run.get_task_instances(session=session)
        if worker_lost:
            for ti in tis:
                if ti.state == TaskInstanceState.RUNNING:
                    # What Airflow records for a try that failed with retries left.
                    ti.end_date = datetime.now(UTC)
                    ti.set_duration()
                    ti.prepare_db_for_next_try(session)
                    ti.state = TaskInstanceState.UP_FOR_RETRY
        if clear:
            clear_task_instances(
                [ti for ti in tis if ti.task_id in clear], session, dag_run_state=DagRunState.RUNNING
            )
        session.commit()
        run.dag = scheduler_dag  # with the shortened retry delays
        with _capture_output(log_path):
            while run.state == DagRunState.RUNNING:
                session.expire_all()
                schedulable, _ = run.update_state(session=session)
                for ti in schedulable:
                    ti.try_number += 1
                    ti.state = TaskInstanceState.SCHEDULED
                session.commit()
                scheduled = [t for t in run.get_task_instances(session=session) if t.state == "scheduled"]
                if not scheduled:
                    time.sleep(0.2)  # a retry waiting for its delay
                for ti in scheduled:
                    with contextlib.suppress(Exception):  # a failed task is the run's business
                        _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
                if run.state in State.finished_dr_states:
                    break
    finally:
        session.close()
    return outcome_of(dag_id, run_id, log_path)


def airflow_dags_test(dag_id: str, conf: dict[str, Any], log_path: Path) -> subprocess.Popen[bytes]:
    """``airflow dags test`` in its own process group (so it can be SIGKILLed with its children)."""
    with log_path.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", "dags", "test", dag_id, "-c", json.dumps(conf)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
            start_new_session=True,
        )


def runs_of(dag_id: str) -> set[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return {r.run_id for r in session.query(DagRun).filter_by(dag_id=dag_id)}


def sync_dag(dag_id: str) -> None:
    """Serialise the DAG into the metadata DB now, so that processes started together do not race to."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        assert dag_id in bag.dags, bag.import_errors
        sync_bag_to_db(bag, bundle.name, bundle.version)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class LogWatcher(threading.Thread):
    """Acts on a running DAG run when its log says so: each (pattern, action) step in turn, once.

    The log is what ``run_dag`` captures (the tasks' own words), so a fault lands at a known point of
    the run (after validate failed once, say) instead of after a guessed delay.
    """

    def __init__(self, log_path: Path, steps: list[tuple[str, Callable[[], None]]], timeout: float = 120):
        super().__init__(daemon=True)
        self.log_path = log_path
        self.steps = steps
        self.timeout = timeout
        self.done: list[str] = []
        self.error: BaseException | None = None
        self._finished = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        offset = 0
        try:
            for pattern, action in self.steps:
                regex = re.compile(pattern)
                while True:
                    text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
                    if regex.search(text, offset):
                        offset = regex.search(text, offset).end()  # type: ignore[union-attr]
                        action()
                        self.done.append(pattern)
                        break
                    if self._finished.is_set() or time.monotonic() > deadline:
                        return
                    time.sleep(0.05)
        except BaseException as exc:  # reported by finish(), on the test's thread
            self.error = exc

    def finish(self) -> list[str]:
        self._finished.set()
        self.join(timeout=30)
        if self.error is not None:
            raise self.error
        return self.done


# -- destinations, read back as sets -----------------------------------------------------------------
VOLATILE_SUBSCRIBER_COLUMNS = {"seq", "id", "public_id", "created_at", "updated_at"}


def plansource_subscribers(sandbox: Any) -> dict[str, dict[str, Any]]:
    """PlanSource's subscribers by employee number (server-side ids and timestamps aside)."""
    with contextlib.closing(sqlite3.connect(sandbox.plansource_state_path)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM subscriber").fetchall()
    return {
        r["employee_number"]: {k: r[k] for k in r.keys() if k not in VOLATILE_SUBSCRIBER_COLUMNS}  # noqa: SIM118 - a Row iterates values
        for r in rows
    }


def differing_keys(found: dict[Any, Any], expected: dict[Any, Any]) -> list[Any]:
    """Keys whose record differs, is missing or is extra. Only keys: records may hold PII, and an
    assertion message must never print it."""
    return sorted(k for k in found.keys() | expected.keys() if found.get(k) != expected.get(k))


def duplicate_count(keys: list[Any]) -> int:
    """How many records are there more than once under the same key."""
    return sum(n - 1 for n in Counter(keys).values() if n > 1)


def subscriber_keys(sandbox: Any) -> list[str]:
    with contextlib.closing(sqlite3.connect(sandbox.plansource_state_path)) as conn:
        return [r[0] for r in conn.execute("SELECT employee_number FROM subscriber")]


def change_log(sandbox: Any) -> list[dict[str, Any]]:
    return admin(sandbox.plansource_url, "GET", "/changes")


def hcm_deductions(hcm_db: Path) -> tuple[dict[tuple[str, str, str], tuple[str, ...]], list[Any], dict]:
    """HCM payroll deductions: key -> compared values, every key as stored, and key -> load bookkeeping."""
    from benefits_hub.deductions.rules import COMPARED_COLUMNS, comparable

    with contextlib.closing(sqlite3.connect(hcm_db)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM hcm_payroll_deduction").fetchall()
    keys = [(r["person_number"], r["deduction_code"], str(r["effective_date"])[:10]) for r in rows]
    values = {
        key: tuple(comparable(c, r[c]) for c in COMPARED_COLUMNS) for key, r in zip(keys, rows, strict=True)
    }
    loads = {key: (r["loaded_at"], r["load_run_id"]) for key, r in zip(keys, rows, strict=True)}
    return values, keys, loads


def expected_deductions(
    plansource_state: Path, hcm_db: Path, start: date, end: date, plan_year_start: date
) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """What an import of ``[start, end]`` must leave in the HCM, worked out from PlanSource's own table
    (not its API) with the hub's pure mapping rules: the latest change of each key wins."""
    from benefits_hub.deductions.rules import (
        COMPARED_COLUMNS,
        comparable,
        deduction_codes,
        is_test_employee,
        map_coverage,
        plan_year_of,
    )
    from hub_sandbox.coverages import row_to_record

    with contextlib.closing(sqlite3.connect(hcm_db)) as conn:
        people = {r[0] for r in conn.execute("SELECT person_number FROM hcm_person")}
    with contextlib.closing(sqlite3.connect(plansource_state)) as conn:
        conn.row_factory = sqlite3.Row
        records = [row_to_record(r) for r in conn.execute("SELECT * FROM payroll_coverage")]
    codes = deduction_codes()
    expected: dict[tuple[str, str, str], tuple[str, ...]] = {}
    in_window = [r for r in records if start.isoformat() <= str(r["updated_at"])[:10] <= end.isoformat()]
    for record in sorted(in_window, key=lambda r: (str(r["updated_at"]), str(r["id"]))):
        if is_test_employee(record) or plan_year_of(record) not in (plan_year_start, None):
            continue
        person = str(record.get("subscriber_code") or "").strip()
        mapped = map_coverage(record, codes, person in people)
        if mapped.row is None:
            continue
        row = mapped.row
        key = (row["person_number"], row["deduction_code"], str(row["effective_date"])[:10])
        expected[key] = tuple(comparable(c, row.get(c)) for c in COMPARED_COLUMNS)
    return expected


PARTICIPANT_FIELDS = ("first_name", "last_name", "birth_date", "hire_date", "status", "email")


def ijoin_participants(sandbox: Any, plan_ids: list[str]) -> tuple[dict[tuple[str, str], tuple], list]:
    """iJoin's participants of these plans: (plan, participant) -> census values, and every key stored."""
    marks = ", ".join("?" * len(plan_ids))
    with contextlib.closing(sqlite3.connect(sandbox.ijoin_state_path)) as conn:
        rows = conn.execute(
            f"SELECT plan_id, participant_id, body FROM ij_participant WHERE plan_id IN ({marks})", plan_ids
        ).fetchall()
    keys = [(plan, pid) for plan, pid, _ in rows]
    values = {
        (plan, pid): tuple(str(json.loads(body).get(f) or "") for f in PARTICIPANT_FIELDS)
        for plan, pid, body in rows
    }
    return values, keys


def expected_participants(sandbox: Any, plan_ids: list[str]) -> dict[tuple[str, str], tuple]:
    """The recordkeeper's participants of these plans, as iJoin must hold them after a sync."""
    marks = ", ".join("?" * len(plan_ids))
    with contextlib.closing(sqlite3.connect(sandbox.recordkeeper_db_path)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"SELECT * FROM rk_participant WHERE plan_id IN ({marks})", plan_ids).fetchall()
    return {
        (r["plan_id"], r["participant_id"]): tuple(str(r[f] or "") for f in PARTICIPANT_FIELDS) for r in rows
    }


def request_count(stats: dict[str, Any], method: str, path: str) -> int:
    return int(stats["requests_by_path"].get(f"{method} {path}", 0))


# -- the report -----------------------------------------------------------------------------------------
@dataclass
class FaultReport:
    """The table the lead quotes: one row per fault, written to test-artifacts/fault-report.md."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        fault: str,
        integration: str,
        status: str,
        expected: int,
        found: int,
        duplicates: int,
        note: str = "",
        exactly_once: bool = False,
    ) -> None:
        """One row; ``exactly_once`` rows (double triggers, cleared tasks) go after the faults."""
        self.rows.append(
            {
                "exactly_once": exactly_once,
                "fault": fault,
                "integration": integration,
                "status": status,
                "expected": expected,
                "found": found,
                "duplicates": duplicates,
            }
        )
        if note:
            self.notes.append(f"{fault}: {note}")

    def write(self, path: Path) -> None:
        if not self.rows:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            "# Fault-injection report",
            "",
            "Written by `pytest -m faults` (tests/faults/). Records are compared as sets of keys and values",
            "with the expected destination state; *duplicates* counts keys held more than once.",
            "",
            "| fault | integration | status seen | records expected | records found | duplicates |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['fault']} | {r['integration']} | {r['status']} | {r['expected']} | {r['found']} "
            f"| {r['duplicates']} |"
            for r in sorted(self.rows, key=lambda r: r["exactly_once"])  # stable: faults first
        ]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        lines.append("")
        path.write_text("\n".join(lines))
