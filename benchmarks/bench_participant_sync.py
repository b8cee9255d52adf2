"""Benchmark: a Participant Sync of N participants across P plans (default 200,000 across 100).

Prints figures, asserts nothing. Run with ``make bench``. The real DAG (one mapped task group per plan)
runs with ``airflow dags test`` against the sandbox's recordkeeper database and iJoin API.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks._harness import run_dag
from hub_sandbox import Sandbox


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=200_000)
    parser.add_argument("--plans", type=int, default=100)
    args = parser.parse_args()
    per_plan = args.participants // args.plans
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as scratch:
        started = time.perf_counter()
        with Sandbox.start(
            Path(scratch) / "sandbox", employees=10, plans=args.plans, participants_per_plan=per_plan
        ) as sandbox:
            seeded = time.perf_counter() - started
            connections = sandbox.connection_env()
            # New plans need their first Plan Sync before their participants can sync (not timed here).
            plans = run_dag("ijoin_plan_sync", {}, connections, Path(scratch) / "plans.log")
            figures = run_dag("ijoin_participant_sync", {}, connections, Path(scratch) / "run.log")
    figures.print(
        f"iJoin Participant Sync, {args.plans} plans x {per_plan:,} participants "
        f"(sandbox seeded in {seeded:.1f}s)"
    )
    print(f"  records created        {figures.summary['records_created']:,}")
    print(f"  (plan sync before it: {plans.wall_seconds:.1f} s, {plans.summary['status']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
