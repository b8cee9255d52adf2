"""Benchmark: Participant Syncs of 200k and 2M participants across 100 plans, each beside its floor.

Prints figures, asserts nothing. Run with ``make bench`` (or ``--sizes 200k`` for a quick look). The
real DAG (one mapped task group per plan) runs with ``airflow dags test`` against the sandbox's
recordkeeper database and iJoin API. The floor: the recordkeeper's participant, balance, allocation and
contribution-rate rows, and each plan's last 3 months of payroll, read with the bare sqlite3 driver; the
same iJoin requests replayed with a bare HTTP client on the iJoin state the sync started from (each
participant created again, as the hub created it); the same staged bytes written.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import floor as fl
from benchmarks._harness import RunFigures, parse_sizes, print_floor, print_scaling, record, run_dag
from benefits_hub.ijoin.rules import months_before
from hub_sandbox import Sandbox
from hub_sandbox.demo import forget_hub_state

SOURCE_TABLES = ("rk_participant", "rk_balance", "rk_allocation", "rk_contribution_rate")
# The hub's payroll scan (RecordkeeperHook.participant_scans), as SQLite runs it.
PAYROLL_SQL = (
    "SELECT r.participant_id, y.pay_date, y.pay_frequency_code FROM rk_participant r "
    "JOIN rk_payroll y ON y.plan_id = r.plan_id AND y.ssn = r.ssn "
    "WHERE r.plan_id = ? AND r.ssn <> '' AND y.pay_date >= ? ORDER BY r.participant_id, y.pay_date"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200k,2M", help="participants, comma-separated (200k, 2M...)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply each size (make bench: 2)")
    parser.add_argument("--plans", type=int, default=100)
    args = parser.parse_args()
    rows: list[tuple[int, RunFigures, fl.Floor]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        scratch = Path(tmp)
        for size in (int(s * args.scale) for s in parse_sizes(args.sizes)):
            # Each size against a new sandbox: no state an earlier size left (its fingerprints are of a
            # PlanSource that is gone, and merging them would be measured as this run's work).
            forget_hub_state()
            per_plan = size // args.plans
            started = time.perf_counter()
            with Sandbox.start(
                scratch / f"sandbox-{size}", employees=10, plans=args.plans, participants_per_plan=per_plan
            ) as sandbox:
                seeded = time.perf_counter() - started
                connections = sandbox.connection_env()
                # New plans need their first Plan Sync before their participants can sync (not timed here).
                plans = run_dag("ijoin_plan_sync", {}, connections, scratch / f"plans-{size}.log")
                recording = scratch / f"participants-{size}.http.jsonl"
                before = scratch / f"ijoin-before-{size}.db"
                fl.snapshot_state(sandbox.ijoin_state_path, before)
                fl.start_recording(sandbox, recording)
                figures = run_dag("ijoin_participant_sync", {}, connections, scratch / f"sync-{size}.log")
                fl.stop_recording(sandbox)
                # The floor's requests meet iJoin as the hub's did: replayed on the state the sync left,
                # each participant would be found unchanged, less work for iJoin than creating it.
                fl.restore_state(before, sandbox.ijoin_state_path)
                floor = fl.Floor()
                floor.timed(
                    "read recordkeeper",
                    fl.read_rows, sandbox.recordkeeper_db_path,
                    [f"SELECT * FROM {t}" for t in SOURCE_TABLES] + payroll_reads(sandbox),
                )  # fmt: skip
                floor.timed("HTTP (same requests)", fl.replay_http, recording, sandbox)
                floor.timed(
                    "write staged bytes",
                    fl.write_bytes, scratch / "floor.bin", fl.staged_bytes(figures.staging_root),
                )  # fmt: skip
            figures.drop_staging()
            plans.drop_staging()
            figures.print(
                f"\niJoin Participant Sync, {args.plans} plans x {per_plan:,} participants "
                f"(sandbox seeded in {seeded:.1f}s)"
            )
            print(f"  records created        {figures.summary['records_created']:,}")
            print(f"  (plan sync before it: {plans.wall_seconds:.1f} s, {plans.summary['status']})")
            print_floor(figures, floor)
            record("participants", size, figures, floor)
            rows.append((size, figures, floor))
    print_scaling("iJoin Participant Sync", rows)
    return 0


def payroll_reads(sandbox: Sandbox) -> list[tuple[str, tuple[str, ...]]]:
    """The last 3 months of payroll, matched to each plan's participants by SSN (Relius keys payroll by
    SSN): the hub's payroll read, plan by plan in participant order, which a plain script must do too to
    tell each participant's pay frequency."""
    since = months_before(datetime.now(UTC).date(), 3).isoformat()
    with sqlite3.connect(sandbox.recordkeeper_db_path) as conn:
        plans = [plan_id for (plan_id,) in conn.execute("SELECT plan_id FROM rk_plan ORDER BY plan_id")]
    return [(PAYROLL_SQL, (plan_id, since)) for plan_id in plans]


if __name__ == "__main__":
    raise SystemExit(main())
