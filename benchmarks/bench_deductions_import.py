"""Benchmark: the initial deductions import of about N coverage records (default 1,000,000).

Prints figures, asserts nothing. Run with ``make bench``. The sandbox is seeded with enough employees
for N current-plan-year coverage records (about 2.6 per employee), then the real DAG imports the whole
2026 plan year into the SQLite HCM with ``airflow dags test``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from benchmarks._harness import run_dag
from hub_sandbox import Sandbox

CURRENT_YEAR_RECORDS_PER_EMPLOYEE = 2.585  # measured on the seeded population


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    employees = math.ceil(args.records / CURRENT_YEAR_RECORDS_PER_EMPLOYEE)
    conf = {"delta": True, "deduction_start_date": "2025-10-01", "plan_year_start_date": "2025-12-31"}
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as scratch:
        started = time.perf_counter()
        with Sandbox.start(Path(scratch) / "sandbox", employees=employees) as sandbox:
            seeded = time.perf_counter() - started
            figures = run_dag(
                "plansource_deductions_import", conf, sandbox.connection_env(), Path(scratch) / "run.log"
            )
    figures.print(
        f"Initial PlanSource Deductions Import, {employees:,} employees "
        f"(sandbox seeded in {seeded:.1f}s), "
        f"{figures.summary.get('source_records', 0):,} coverage records read"
    )
    print(f"  records created        {figures.summary['records_created']:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
