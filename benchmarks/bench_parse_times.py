"""Benchmark: each DAG file's parse time, from Airflow's own DagBag report (``airflow dags report``).

Prints figures, asserts nothing (the target is under 0.2 s a file; the DAG integrity test separately
checks that no file does I/O at parse time). The first file parsed pays for importing shared modules.
"""

from __future__ import annotations

import json
import subprocess
import sys

TARGET_SECONDS = 0.2


def seconds(duration: str) -> float:
    hours, minutes, rest = duration.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def main() -> int:
    command = [sys.executable, "-m", "airflow", "dags", "report", "-o", "json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    # The report is the last line of stdout; warnings before it are Airflow's own.
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print("\nDAG file parse times (airflow dags report)")
    for entry in sorted(report, key=lambda e: -seconds(e["duration"])):
        took = seconds(entry["duration"])
        verdict = "ok" if took < TARGET_SECONDS else f"over {TARGET_SECONDS} s"
        print(f"  {entry['file']:<42} {took * 1000:7.1f} ms  {entry['task_num']:>3} tasks  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
