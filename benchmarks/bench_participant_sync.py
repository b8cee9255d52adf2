"""Benchmark: Participant Syncs of 200k and 2M participants across 100 plans, each beside its floor.

Prints figures, asserts nothing. Run with ``make bench`` (or ``--sizes 200k`` for a quick look). The
real DAG (one mapped task group per plan) runs with ``airflow dags test`` against the sandbox's
recordkeeper database and iJoin API. The floor: the recordkeeper's participant, balance, allocation and
contribution-rate rows read with the bare sqlite3 driver, the same iJoin requests replayed with a bare
HTTP client, the same staged bytes written.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks import floor as fl
from benchmarks._harness import RunFigures, parse_sizes, print_floor, print_scaling, record, run_dag
from hub_sandbox import Sandbox
from hub_sandbox.demo import forget_hub_state

SOURCE_TABLES = ("rk_participant", "rk_balance", "rk_allocation", "rk_contribution_rate")


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
                fl.start_recording(sandbox, recording)
                figures = run_dag("ijoin_participant_sync", {}, connections, scratch / f"sync-{size}.log")
                fl.stop_recording(sandbox)
                floor = fl.Floor()
                floor.timed(
                    "read recordkeeper",
                    fl.read_rows, sandbox.recordkeeper_db_path, [f"SELECT * FROM {t}" for t in SOURCE_TABLES],
                )  # fmt: skip
                floor.timed("HTTP (same requests)", fl.replay_http, recording, sandbox)
                floor.timed(
                    "write staged bytes",
                    fl.write_bytes, scratch / "floor.bin", fl.staged_bytes(figures.staging_root),
                )  # fmt: skip
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


if __name__ == "__main__":
    raise SystemExit(main())
