"""Benchmark: a full HCM Demographic Export of N employees (default 100,000) against the sandbox.

Prints figures, asserts nothing. Run with ``make bench`` (or this file with the project's venv and
``AIRFLOW_HOME`` set, after ``airflow db migrate``). The run is a real ``airflow dags test`` of the
DAG: wall time and the peak RSS of that process (the tasks run inside it), and each stage's time
from Airflow's own task-instance records.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hub_sandbox import Sandbox

DAG_ID = "plansource_hcm_demographic_export"


def stage_times(run_id: str) -> dict[str, float]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id).all()
        return {
            ti.task_id: (ti.end_date - ti.start_date).total_seconds()
            for ti in tis
            if ti.start_date and ti.end_date
        }


def latest_run() -> tuple[str, dict]:
    from hub_sandbox.demo import latest_summary

    summary = latest_summary(DAG_ID)
    assert summary is not None, "no Run Summary"
    return summary["integration_reference_id"], summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=100_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hub-bench-") as scratch:
        started = time.perf_counter()
        sandbox = Sandbox.start(Path(scratch) / "sandbox", employees=args.employees)
        seed_seconds = time.perf_counter() - started
        try:
            env = os.environ.copy()
            env.update(sandbox.connection_env())
            log = Path(scratch) / "run.log"
            started = time.perf_counter()
            with log.open("w") as sink:
                command = [sys.executable, "-m", "airflow", "dags", "test", DAG_ID]
                command += ["-c", json.dumps({"delta": False})]
                subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, env=env, check=False)
            wall = time.perf_counter() - started
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            run_id, summary = latest_run()
            stages = stage_times(run_id)
        finally:
            sandbox.stop()

    print(
        f"Full HCM Demographic Export, {args.employees:,} employees (sandbox seeded in {seed_seconds:.1f}s)"
    )
    print(f"  status                 {summary['status']}")
    print(f"  records processed      {summary['records_processed']:,}")
    print(f"  wall time              {wall:.1f} s  (airflow dags test, including Airflow start-up)")
    print(f"  peak memory (RSS)      {peak_kib / 1024:.0f} MiB")
    for stage in ("validate", "extract", "transform", "deliver", "summary"):
        if stage in stages:
            print(f"  {stage:<22} {stages[stage]:.1f} s")
    rate = summary["records_processed"] / max(sum(stages.values()), 1e-9)
    print(f"  throughput (stages)    {rate:,.0f} employees/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
