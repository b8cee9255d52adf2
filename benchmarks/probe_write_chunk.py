"""Probe: how the deductions' rows per transaction (``deductions.importer.WRITE_CHUNK``) cost on SQLite.

Not part of ``make bench``; run it to see why the import writes 25,000 rows a transaction:
``python -m benchmarks.probe_write_chunk --rows 1M --chunks 5000,25000,100000``. It upserts the same
synthetic rows into an empty copy of the HCM's deduction table (include/sql/hcm_schema.sql) with the
writer's statement, a commit per chunk, in the order a nightly import brings them: each employee's
coverages far apart, as PlanSource lists changes by time, not by employee. Prints figures, asserts
nothing.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from benchmarks._harness import parse_sizes
from benefits_hub.deductions.rules import DEDUCTION_COLUMNS, KEY_COLUMNS

SCHEMA = Path(__file__).resolve().parents[1] / "include" / "sql" / "hcm_schema.sql"
CODES = ("MED", "DEN", "VIS", "LIFE", "STD", "LTD")


def synthetic_rows(count: int, employees: int) -> list[tuple[str, ...]]:
    rng = random.Random(42)
    people = [f"E{n:07d}" for n in rng.sample(range(10_000_000), employees)]
    return [
        (people[n % employees], CODES[(n // employees) % len(CODES)], "2026-01-01", None, "12.34", "45.67",
         "12.34", "0.00", "EE", "Medical", "2026-01-01", f"C{n:09d}", "2026-01-02 03:04:05",
         "2026-12-07 10:00:00", "probe")
        for n in range(count)
    ]  # fmt: skip


def upsert(rows: list[tuple[str, ...]], chunk: int, folder: Path) -> tuple[float, float]:
    """(seconds in executemany, seconds in commit) for all rows, ``chunk`` rows a transaction."""
    path = folder / f"hcm-{chunk}.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA.read_text())
    columns = [*DEDUCTION_COLUMNS, "loaded_at", "load_run_id"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in KEY_COLUMNS)
    sql = (
        f"INSERT INTO hcm_payroll_deduction ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {updates}"
    )
    writing = committing = 0.0
    for start in range(0, len(rows), chunk):
        began = time.perf_counter()
        conn.executemany(sql, rows[start : start + chunk])
        written = time.perf_counter()
        conn.commit()
        writing += written - began
        committing += time.perf_counter() - written
    conn.close()
    path.unlink()
    return writing, committing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1M", help="deduction rows (100k, 1M...)")
    parser.add_argument("--chunks", default="5000,25000,100000", help="rows per transaction, comma-separated")
    args = parser.parse_args()
    count = parse_sizes(args.rows)[0]
    rows = synthetic_rows(count, employees=max(count * 10 // 26, 1))  # 2.6 coverages an employee
    print(f"{count:,} deduction rows, upserted into an empty table on SQLite")
    print(f"{'rows a transaction':>20} {'total s':>8} {'executemany s':>14} {'commit s':>9}")
    with tempfile.TemporaryDirectory(prefix="hub-probe-") as tmp:
        for chunk in (int(c) for c in args.chunks.split(",")):
            writing, committing = upsert(rows, chunk, Path(tmp))
            print(f"{chunk:>20,} {writing + committing:>8.1f} {writing:>14.1f} {committing:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
