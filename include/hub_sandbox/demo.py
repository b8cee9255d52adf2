"""The README's first command: every integration end to end on the embedded defaults.

Starts the sandbox (SFTP server, PlanSource-like API, seeded SQLite HCM), then runs each integration
for real with ``airflow dags test`` against it, and prints each Run Summary as a table:

1. PlanSource HCM Demographic Export, full run (Delta off: everyone, plus the census file);
2. a few HCM edits (address changes, a termination), then the same export as a delta run.

Each ``airflow dags test`` prints its tasks' logs instead of writing them where the Airflow UI reads them
(it runs the tasks one after another inside its own process): its console goes to ``$AIRFLOW_HOME/logs/demo/``
as JSON lines, and the demo then copies each task attempt's lines to that attempt's log file under
``[logging] base_log_folder``, so ``make airflow`` shows the demo's runs with their task logs. Expected
statuses are part of the demo: the seeded HCM holds employees with invalid SSNs and mismatched PlanSource
ids, so the full run ends "Completed with Errors" and shows its error file; the delta run ends "Completed".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub_sandbox import Sandbox
from hub_sandbox.generator import special_people, touch_employees

REPO = Path(__file__).resolve().parents[2]
EXPORT_DAG = "plansource_hcm_demographic_export"
IMPORT_DAG = "plansource_deductions_import"
RESUBMIT_DAG = "plansource_deductions_resubmit"
SET_DAG = "plansource_benefits_set"
PLAN_SYNC_DAG = "ijoin_plan_sync"
PARTICIPANT_SYNC_DAG = "ijoin_participant_sync"
WRITEBACK_DAG = "ijoin_enrollment_writeback"
RECONCILE_DAG = "hub_reconciliation"


# The markers `airflow dags test` logs around each task attempt it runs (airflow.sdk.definitions.dag).
_ATTEMPT_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task_id>\S+) map_index=(?P<map_index>-?\d+)$")
_ATTEMPT_END = re.compile(r"\[DAG TEST\] end task task_id=\S+ map_index=-?\d+$")


def _airflow_env(sandbox: Sandbox) -> dict[str, str]:
    env = os.environ.copy()
    env.update(sandbox.connection_env())
    # JSON lines, the format of the task log files the UI reads (level, logger and time kept apart).
    env["AIRFLOW__LOGGING__JSON_LOGS"] = "True"
    return env


def forget_hub_state() -> None:
    """A clean slate: no watermark, fingerprints or import days from an earlier demo or benchmark run
    (they describe a sandbox that is gone)."""
    import shutil

    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    from benefits_hub.staging import staging_base_url

    with create_session() as session:
        session.query(VariableModel).filter(VariableModel.key.like("benefits_hub.%")).delete(
            synchronize_session=False
        )
    base = staging_base_url()
    if base.startswith("file://"):
        shutil.rmtree(Path(base.removeprefix("file://")) / "_state", ignore_errors=True)


def run_integration(
    dag_id: str, conf: dict[str, Any], env: dict[str, str], log_dir: Path, label: str
) -> dict:
    """``airflow dags test`` one run; returns its Run Summary from XCom."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{dag_id}-{label}.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        result = subprocess.run(  # noqa: S603 - our venv's airflow, fixed arguments
            [sys.executable, "-m", "airflow", "dags", "test", dag_id, "-c", json.dumps(conf)],
            stdout=log, stderr=subprocess.STDOUT, env=env, check=False,
        )  # fmt: skip
    seconds = time.monotonic() - started
    run_id = latest_run_id(dag_id)
    if run_id is not None:  # first, so that a run that went wrong has its task logs in the UI too
        write_task_logs(dag_id, run_id, log_path)
    summary = latest_summary(dag_id)
    if summary is None:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{dag_id} produced no Run Summary (exit {result.returncode}). Log tail:\n{tail}")
    title = summary.get("integration_name") or summary.get("process_name")
    print(f"\n=== {title} - {label} ({seconds:.1f}s, console: {log_path}) ===")
    print(format_table(summary))
    return summary


def split_attempts(console: Iterable[str]) -> dict[tuple[str, int], list[list[str]]]:
    """The lines of each task attempt in an ``airflow dags test`` console log, by (task_id, map_index), in
    the order they ran. The command runs one attempt at a time, so an attempt is everything from its
    "starting" marker to its "end task" marker; the lines between attempts are the run loop's own."""
    attempts: dict[tuple[str, int], list[list[str]]] = {}
    current: list[str] | None = None
    for line in console:
        event = _event(line)
        if started := _ATTEMPT_START.match(event):
            current = []
            attempts.setdefault((started["task_id"], int(started["map_index"])), []).append(current)
        if current is not None:
            current.append(line if line.endswith("\n") else line + "\n")
        if _ATTEMPT_END.match(event):
            current = None
    return attempts


def _event(line: str) -> str:
    if not line.startswith("{"):
        return ""  # a line a task printed itself, or a Python warning
    try:
        record = json.loads(line)
    except ValueError:
        return ""
    return str(record.get("event", "")) if isinstance(record, dict) else ""


def write_task_logs(dag_id: str, run_id: str, console_log: Path) -> list[Path]:
    """Write each task attempt's lines of a run's console log to the file the UI reads for that attempt
    (``base_log_folder``/``dag_id=…/run_id=…/task_id=…/attempt=N.log``, by the run's own log template).

    Attempts pair with the task instance's tries in order (a retry is a new try). The lines are the console's
    own, nothing added: stages never log records, so no SSN reaches a task log this way either.
    """
    from airflow.configuration import conf
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.log.log_reader import TaskLogReader
    from airflow.utils.session import create_session

    with console_log.open(errors="replace") as console:
        attempts = split_attempts(console)
    handler = TaskLogReader().log_handler  # the handler the UI reads logs through, and its folder
    local_base = getattr(handler, "local_base", None)
    if not local_base or local_base == os.devnull:  # no file handler configured: Airflow's default folder
        local_base = conf.get("logging", "base_log_folder")
    base = Path(local_base)
    written: list[Path] = []
    with create_session() as session:
        for (task_id, map_index), segments in attempts.items():
            key = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
            tries: list[TaskInstance | TaskInstanceHistory] = [
                *session.query(TaskInstanceHistory).filter_by(**key),
                *session.query(TaskInstance).filter_by(**key),
            ]
            tries.sort(key=lambda ti: ti.try_number)
            for ti, lines in zip(tries, segments, strict=False):
                path = base / handler._render_filename(ti, ti.try_number, session=session)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(lines))
                written.append(path)
    return written


def show_errors(summary: dict[str, Any], limit: int = 6) -> list[dict[str, str]]:
    """Print the first rows of a run's (masked) error file; return all its rows."""
    import csv

    if not summary.get("error_files"):
        return []
    path = Path(summary["error_files"][0].removeprefix("file://"))
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    print(f"\n  Error file ({summary['errors']} record(s), SSNs masked): {path}")
    for row in rows[:limit]:
        print(f"    {row['record_key']:<22} {row['field']:<26} {row['rule']:<24} {row['reason'][:70]}")
    return rows


def rows_by_key(rows: list[dict[str, str]]) -> dict[str, str]:
    return {row["record_key"]: row["rule"] for row in rows}


def _change_some_coverages(sandbox: Sandbox, count: int = 5) -> int:
    """Simulate a day of PlanSource changes: new premiums on a few current coverages."""
    import sqlite3

    import requests

    with sqlite3.connect(sandbox.plansource_state_path) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM payroll_coverage WHERE plan_year = 2026 AND current = 1 "
                "AND test_employee = 0 AND termination_date IS NULL AND subscriber_code LIKE 'E%' "
                "ORDER BY id LIMIT ?",
                (count,),
            )
        ]
    changes = [{"id": cid, "subscriber_premium": f"{100 + n}.25"} for n, cid in enumerate(ids)]
    url = f"{sandbox.plansource_url}/sandbox/coverages"
    requests.post(url, json={"coverages": changes}, timeout=30).raise_for_status()
    return len(changes)


def latest_run_id(dag_id: str) -> str | None:
    """The run id of the DAG's newest run (the demo runs one integration at a time)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id.desc()).first()
        return None if run is None else str(run.run_id)


def latest_summary(dag_id: str) -> dict[str, Any] | None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    run_id = latest_run_id(dag_id)
    if run_id is None:
        return None
    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=run_id, task_id="summary", key="return_value")
            .first()
        )
        if row is None:
            return None
        return row.value if isinstance(row.value, dict) else json.loads(row.value)


def format_table(summary: dict[str, Any]) -> str:
    width = max(len(k) for k in summary)
    lines = []
    for key, value in summary.items():
        if key == "members":  # an integration set: one line per member
            value = [f"{m['member']}: {m['status']}" for m in value]
        if key == "outcomes":  # a sync that fanned out: one line per plan
            value = [f"{o['plan_id']}: {o['status']}" for o in value]
        if isinstance(value, list):
            value = "\n".join([value[0], *(" " * (width + 4) + v for v in value[1:])]) if value else "-"
        lines.append(f"  {key.ljust(width)}  {'-' if value in (None, '') else value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO / ".sandbox", help="sandbox directory")
    parser.add_argument("--employees", type=int, default=1000, help="size of the seeded HCM")
    args = parser.parse_args(argv)

    log_dir = Path(os.environ.get("AIRFLOW_HOME", REPO / ".airflow")) / "logs" / "demo"
    print(f"Starting the sandbox in {args.dir} with {args.employees} employees...")
    with Sandbox.start(args.dir, employees=args.employees, reseed=True) as sandbox:
        print(f"  PlanSource API {sandbox.plansource_url}, SFTP 127.0.0.1:{sandbox.sftp_port}")
        env = _airflow_env(sandbox)
        forget_hub_state()

        full = run_integration(EXPORT_DAG, {"delta": False}, env, log_dir, "full run")
        show_errors(full)

        special = special_people(args.employees)
        taken = {n for people in special.values() for n in people}
        ordinary = [f"E{i:06d}" for i in range(10, args.employees + 1) if f"E{i:06d}" not in taken]
        moved, leaver = ordinary[:24], ordinary[24]
        now = datetime.now(UTC)
        touch_employees(sandbox.hcm_db_path, moved, now, {"city": "Springfield", "zip_code": "62704"})
        touch_employees(
            sandbox.hcm_db_path, [leaver], now,
            {"employee_status_code": "T", "termination_date": now.date().isoformat(),
             "termination_reason_code": "RESIGN"},
        )  # fmt: skip
        print(f"\nHCM edits: {len(moved)} address change(s), 1 termination ({leaver}).")
        time.sleep(1.1)  # HCM timestamps have whole seconds: let the delta start in a later one
        run_integration(EXPORT_DAG, {"delta": True, "lookback_days": 1}, env, log_dir, "delta run")

        initial = run_integration(
            IMPORT_DAG,
            {"delta": True, "deduction_start_date": "2025-10-01", "plan_year_start_date": "2025-12-31"},
            env, log_dir, "initial import of the 2026 plan year",
        )  # fmt: skip
        rows = show_errors(initial)
        fixable = [r["record_key"] for r in rows if r["rule"] in ("amount:negative", "xref:deduction_code")]
        corrections = {
            key: {"subscriber_premium": "12.50", "subscriber_pretax_premium": "12.50"}
            if rows_by_key(rows)[key] == "amount:negative"
            else {"plan_payroll_mapping_code": "MED-PPO"}
            for key in fixable
        }
        records = len(rows_by_key(rows))
        print(f"\nTransaction Assistant: correcting {len(corrections)} of {records} error record(s).")
        run_integration(
            RESUBMIT_DAG,
            {"integration_reference_id": initial["integration_reference_id"], "corrections": corrections},
            env, log_dir, "resubmit corrected records",
        )  # fmt: skip

        changed = _change_some_coverages(sandbox)
        print(f"\nPlanSource changes: {changed} coverage premium(s) changed today.")
        run_integration(IMPORT_DAG, {"delta": True, "lookback_days": 1}, env, log_dir, "nightly delta")
        run_integration(
            SET_DAG,
            {"export": {"delta": True, "lookback_days": 1}, "import": {"delta": True, "lookback_days": 1}},
            env, log_dir, "integration set (export, then import)",
        )  # fmt: skip

        plans = run_integration(PLAN_SYNC_DAG, {}, env, log_dir, "all plans")
        for outcome in plans.get("outcomes", []):
            detail = "; ".join(outcome.get("messages") or []) or outcome.get("result", "")
            print(f"    {outcome['plan_id']}: {outcome['status']:<26} {detail[:90]}")
        synced = ",".join(o["plan_id"] for o in plans.get("outcomes", []) if o["status"] != "Failed")
        run_integration(PARTICIPANT_SYNC_DAG, {"plan_ids": synced}, env, log_dir, f"plans {synced}")
        run_integration(WRITEBACK_DAG, {}, env, log_dir, "pending enrollment elections")
        # Are the systems in step after all that? Only what the integrations refused (or left for a
        # person: a draft waiting for its review) differs.
        run_integration(
            RECONCILE_DAG,
            {},
            env,
            log_dir,
            "HCM ↔ PlanSource demographics and deductions, recordkeeper ↔ iJoin",
        )
    print(
        "\nSandbox stopped. Runs, task logs and XComs stay in $AIRFLOW_HOME; `make airflow` opens the UI"
        " (and starts the sandbox again, with the demo's data)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
