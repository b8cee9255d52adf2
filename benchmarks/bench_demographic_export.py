"""Benchmark: a full HCM Demographic Export of N employees (default 100,000) against the sandbox.

Prints figures, asserts nothing. Run with ``make bench``. The run is a real ``airflow dags test`` of
the DAG: wall time, the peak RSS of that process (the tasks run inside it), and each stage's time
from Airflow's own task-instance records.
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
    parser.add_argument("--employees", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as scratch:
        started = time.perf_counter()
        with Sandbox.start(Path(scratch) / "sandbox", employees=args.employees) as sandbox:
            seeded = time.perf_counter() - started
            figures = run_dag(
                "plansource_hcm_demographic_export",
                {"delta": False},
                sandbox.connection_env(),
                Path(scratch) / "run.log",
            )
    figures.print(
        f"Full HCM Demographic Export, {args.employees:,} employees (sandbox seeded in {seeded:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
