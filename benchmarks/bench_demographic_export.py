"""Benchmark: full HCM Demographic Exports of 100k and 1M employees against the sandbox, each beside
its floor, then the hourly delta over the largest HCM with 1,000 changed employees (three runs, the
median recorded); and after each full export, the Hub Reconciliation of the same HCM and PlanSource,
beside that export's own time (the issue's bound: a reconciliation within 2x the cost of one full
export).

Prints figures, asserts nothing. Run with ``make bench`` (or ``--sizes 100k`` for a quick look). Each run
is a real ``airflow dags test`` of the DAG: wall time, the peak RSS of that process (the tasks run inside
it), each stage's time from Airflow's task-instance records, and the floor measured right after it on the
same data (benchmarks/floor.py).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import floor as fl
from benchmarks._harness import RunFigures, parse_sizes, print_floor, print_scaling, record, run_dag
from benefits_hub.hooks.hcm import CHANGED_PEOPLE, PRIMARY_EMPLOYEES
from hub_sandbox import Sandbox
from hub_sandbox.demo import forget_hub_state
from hub_sandbox.generator import touch_employees

DAG_ID = "plansource_hcm_demographic_export"
DELTA_CHANGES = 1_000
DELTA_RUNS = 3


def export_with_floor(sandbox: Sandbox, scratch: Path, conf: dict, label: str) -> tuple[RunFigures, fl.Floor]:
    recording = scratch / f"{label}.http.jsonl"
    before = scratch / f"{label}-plansource-before.db"
    fl.snapshot_state(sandbox.plansource_state_path, before)
    fl.start_recording(sandbox, recording)
    figures = run_dag(DAG_ID, conf, sandbox.connection_env(), scratch / f"{label}.log")
    fl.stop_recording(sandbox)
    # The floor's requests meet PlanSource as the hub's did (a new employee created, not refused as one
    # PlanSource already holds); replaying them leaves PlanSource as the run left it for the next run.
    fl.restore_state(before, sandbox.plansource_state_path)
    floor = fl.Floor()
    if not conf.get("delta") or not figures.summary.get("window_start"):  # a full read
        floor.timed("read HCM rows", fl.read_rows, sandbox.hcm_db_path, [f"{PRIMARY_EMPLOYEES} ORDER BY 1"])
    else:  # the window's changed people, by the same two index range scans the hub's query uses
        window = [_sqlite_time(figures.summary["window_start"]), _sqlite_time(figures.summary["window_end"])]
        changed = f"{PRIMARY_EMPLOYEES} WHERE p.person_number IN ({CHANGED_PEOPLE.format(p='?')}) ORDER BY 1"
        floor.timed("read HCM rows", fl.read_rows, sandbox.hcm_db_path, [(changed, tuple(window * 2))])
    floor.timed("HTTP (same requests)", fl.replay_http, recording, sandbox)
    floor.timed(
        "write staged bytes", fl.write_bytes, scratch / "floor.bin", fl.staged_bytes(figures.staging_root)
    )
    census = figures.staging_root / "output" / "census.csv"
    manifest = json.loads((figures.staging_root / "run_manifest.json").read_text())
    if manifest["stages"]["deliver"]["details"].get("census_file"):  # a full run delivered it
        floor.timed("SFTP census upload", fl.sftp_upload, sandbox, census, "inbound/floor-census.csv")
    figures.drop_staging()
    return figures, floor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1M", help="employee counts, comma-separated (100k, 1M...)")
    args = parser.parse_args()
    rows: list[tuple[int, RunFigures, fl.Floor]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        scratch = Path(tmp)
        sizes = parse_sizes(args.sizes)
        for size in sizes:
            # Each size against a new sandbox: no state an earlier size left (its fingerprints are of a
            # PlanSource that is gone, and merging them would be measured as this run's work).
            forget_hub_state()
            started = time.perf_counter()
            with Sandbox.start(scratch / f"sandbox-{size}", employees=size, token_ttl=86_400) as sandbox:
                seeded = time.perf_counter() - started
                figures, floor = export_with_floor(sandbox, scratch, {"delta": False}, f"full-{size}")
                figures.print(
                    f"\nFull HCM Demographic Export, {size:,} employees (sandbox seeded in {seeded:.1f}s)"
                )
                print_floor(figures, floor)
                record("export (full)", size, figures, floor)
                rows.append((size, figures, floor))
                reconcile(sandbox, scratch, figures, size)
                if size == sizes[-1]:
                    delta(sandbox, scratch, figures)
    print_scaling("HCM Demographic Export (full)", rows)
    return 0


def reconcile(sandbox: Sandbox, scratch: Path, export: RunFigures, size: int) -> None:
    """The nightly reconciliation of HCM and PlanSource demographics right after a full export: its
    "floor" here is that export's own time (it reads both sides as the export does, and compares)."""
    figures = run_dag(
        "hub_reconciliation", {"pairs": "hcm_plansource_demographics"}, sandbox.connection_env(),
        scratch / f"reconcile-{size}.log",
    )  # fmt: skip
    figures.drop_staging()
    one_export = fl.Floor(parts={"one full export (its hub time)": export.hub_seconds})
    figures.print(f"\nHub Reconciliation (demographics), {size:,} employees, after that export")
    print_floor(figures, one_export)
    print(f"  discrepancies          {figures.summary.get('discrepancies', 0):,}")
    record("reconciliation / full export", size, figures, one_export)


def _sqlite_time(instant: str) -> str:
    """A window bound as the HCM's SQLite stamps are written: 'YYYY-MM-DD HH:MM:SS', UTC."""
    return datetime.fromisoformat(instant).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def delta(sandbox: Sandbox, scratch: Path, full: RunFigures) -> None:
    """The hourly delta: 1,000 employees edited in the HCM, the rest untouched (an index, not a scan).

    Half a second of the hub's against a fifth of a second of floor: a tenth of a second of this
    machine's noise moves the ratio by half a unit, so the delta runs DELTA_RUNS times, and the run with
    the median ratio is the one recorded (all are printed)."""
    runs: list[tuple[float, RunFigures, fl.Floor, int]] = []
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        step = max(full.records // DELTA_CHANGES, 1)
        people = [
            number for (number,) in conn.execute(
                "SELECT person_number FROM hcm_person WHERE rowid % ? = 0 ORDER BY rowid LIMIT ?",
                (step, DELTA_CHANGES),
            )
        ]  # fmt: skip
    for attempt in range(DELTA_RUNS):
        # The same employees each time, with a new city: a window of one day holds 1,000 people, each
        # with a change to send, in every run.
        city = f"Deltaville {attempt + 1}"
        touched = touch_employees(sandbox.hcm_db_path, people, datetime.now(UTC), {"city": city})
        time.sleep(1.05)  # HCM timestamps are whole seconds: the run's window must end after the edits
        conf = {"delta": True, "lookback_days": 1}
        figures, floor = export_with_floor(sandbox, scratch, conf, f"delta-{attempt}")
        ratio = figures.hub_seconds / max(floor.seconds, 1e-9)
        print(f"  (delta run {attempt + 1}: {figures.records:,} records, hub {figures.hub_seconds:.2f} s, "
              f"floor {floor.seconds:.2f} s, {ratio:.2f}x)")  # fmt: skip
        runs.append((ratio, figures, floor, touched))
    _ratio, figures, floor, touched = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    figures.print(
        f"\nHourly delta over the same {full.records:,}-employee HCM, {touched:,} employees changed "
        f"(the median of {DELTA_RUNS} runs)"
    )
    print_floor(figures, floor)
    record(f"export delta ({touched:,} changed)", full.records, figures, floor)
    print(
        f"  delta / full run       {figures.task_seconds / full.task_seconds:.1%} of the full run's task "
        f"time, {figures.wall_seconds / full.wall_seconds:.1%} of its wall time"
    )


if __name__ == "__main__":
    raise SystemExit(main())
