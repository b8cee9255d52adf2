"""Benchmark: initial deductions imports of about 100k and 1M coverage records, each beside its floor.

Prints figures, asserts nothing. Run with ``make bench`` (or ``--sizes 100k`` for a quick look). The
sandbox is seeded with enough employees for N current-plan-year coverage records (about 2.6 per
employee), then the real DAG imports the whole 2026 plan year into the SQLite HCM with
``airflow dags test``. The floor: the same PlanSource pages fetched again with a bare HTTP client, the
same rows upserted into the same HCM table with one statement, the same staged bytes written.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from benchmarks import floor as fl
from benchmarks._harness import RunFigures, parse_sizes, print_floor, print_scaling, record, run_dag
from benefits_hub.deductions.rules import DEDUCTION_COLUMNS, KEY_COLUMNS
from hub_sandbox import Sandbox
from hub_sandbox.demo import forget_hub_state

DAG_ID = "plansource_deductions_import"
CURRENT_YEAR_RECORDS_PER_EMPLOYEE = 2.585  # measured on the seeded population
INITIAL_IMPORT = {"delta": True, "deduction_start_date": "2025-10-01", "plan_year_start_date": "2025-12-31"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1M", help="coverage records, comma-separated (100k, 1M...)")
    args = parser.parse_args()
    rows: list[tuple[int, RunFigures, fl.Floor]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        scratch = Path(tmp)
        for size in parse_sizes(args.sizes):
            # Each size against a new sandbox: no state an earlier size left (its fingerprints are of a
            # PlanSource that is gone, and merging them would be measured as this run's work).
            forget_hub_state()
            employees = math.ceil(size / CURRENT_YEAR_RECORDS_PER_EMPLOYEE)
            started = time.perf_counter()
            with Sandbox.start(scratch / f"sandbox-{size}", employees=employees, token_ttl=86_400) as sandbox:
                seeded = time.perf_counter() - started
                recording = scratch / f"import-{size}.http.jsonl"
                fl.start_recording(sandbox, recording)
                figures = run_dag(
                    DAG_ID, INITIAL_IMPORT, sandbox.connection_env(), scratch / f"import-{size}.log"
                )
                fl.stop_recording(sandbox)
                floor = fl.Floor()
                floor.timed("HTTP (same requests)", fl.replay_http, recording, sandbox)
                copy = scratch / "deductions-copy.sqlite"
                fl.copy_table(sandbox.hcm_db_path, "hcm_payroll_deduction", copy)
                columns = (*DEDUCTION_COLUMNS, "loaded_at", "load_run_id")
                floor.timed(
                    "upsert HCM rows",
                    fl.upsert_rows, sandbox.hcm_db_path, "hcm_payroll_deduction", KEY_COLUMNS, columns, copy,
                )  # fmt: skip
                floor.timed(
                    "write staged bytes",
                    fl.write_bytes, scratch / "floor.bin", fl.staged_bytes(figures.staging_root),
                )  # fmt: skip
            figures.print(
                f"\nInitial PlanSource Deductions Import, {employees:,} employees (sandbox seeded in "
                f"{seeded:.1f}s), {figures.summary.get('source_records', 0):,} coverage records read"
            )
            print(f"  records created        {figures.summary['records_created']:,}")
            figures.drop_staging()
            print_floor(figures, floor)
            record("deductions (initial import)", size, figures, floor)
            rows.append((size, figures, floor))
    print_scaling("PlanSource Deductions Import (initial)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
