"""Shared by the benchmark scripts: run one DAG for real and read back its figures."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class RunFigures:
    wall_seconds: float
    peak_rss_mib: float  # the largest child process so far: the `airflow dags test` that ran the tasks
    summary: dict[str, Any]
    stage_seconds: dict[str, float]

    def print(self, title: str) -> None:
        print(title)
        print(f"  status                 {self.summary['status']}")
        print(f"  records processed      {self.summary['records_processed']:,}")
        print(
            f"  wall time              {self.wall_seconds:.1f} s  (airflow dags test, with Airflow start-up)"
        )
        print(f"  peak memory (RSS)      {self.peak_rss_mib:.0f} MiB")
        for stage in ("validate", "extract", "transform", "deliver", "summary"):
            if stage in self.stage_seconds:
                print(f"  {stage:<22} {self.stage_seconds[stage]:.1f} s")
        rate = self.summary["records_processed"] / max(sum(self.stage_seconds.values()), 1e-9)
        print(f"  throughput (stages)    {rate:,.0f} records/s")


def run_dag(dag_id: str, conf: dict[str, Any], connections: dict[str, str], log: Path) -> RunFigures:
    env = {**os.environ, **connections}
    command = [sys.executable, "-m", "airflow", "dags", "test", dag_id, "-c", json.dumps(conf)]
    started = time.perf_counter()
    with log.open("w") as sink:
        subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, env=env, check=False)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    from hub_sandbox.demo import latest_summary

    summary = latest_summary(dag_id)
    if summary is None:
        raise SystemExit(f"{dag_id} produced no Run Summary; see {log}")
    return RunFigures(wall, peak, summary, stage_seconds(dag_id, summary["integration_reference_id"]))


def stage_seconds(dag_id: str, run_id: str) -> dict[str, float]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id).all()
        # A fanned-out stage (per_item.extract, one per plan) is summed over its task instances.
        seconds: dict[str, float] = {}
        for ti in tis:
            if ti.start_date and ti.end_date:
                stage = ti.task_id.rsplit(".", 1)[-1]
                seconds[stage] = seconds.get(stage, 0.0) + (ti.end_date - ti.start_date).total_seconds()
        return seconds
