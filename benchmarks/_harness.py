"""Shared by the benchmark scripts: run one DAG for real, read back its figures, print them with the floor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.floor import Floor

STAGES = ("validate", "extract", "transform", "deliver", "summary")


@dataclass
class RunFigures:
    wall_seconds: float
    peak_rss_mib: float  # the `airflow dags test` process that ran every task of the run
    summary: dict[str, Any]
    stage_seconds: dict[str, float]
    staging_root: Path

    @property
    def records(self) -> int:
        return int(self.summary["records_processed"])

    @property
    def task_seconds(self) -> float:
        return sum(self.stage_seconds.values())

    def print(self, title: str) -> None:
        print(title)
        print(f"  status                 {self.summary['status']}")
        print(f"  records processed      {self.records:,}")
        print(
            f"  wall time              {self.wall_seconds:.1f} s  (airflow dags test, with Airflow start-up)"
        )
        print(f"  peak memory (RSS)      {self.peak_rss_mib:.0f} MiB")
        for stage in STAGES:
            if stage in self.stage_seconds:
                print(f"  {stage:<22} {self.stage_seconds[stage]:.1f} s")
        rate = self.records / max(self.task_seconds, 1e-9)
        print(f"  throughput (stages)    {rate:,.0f} records/s")


def run_dag(dag_id: str, conf: dict[str, Any], connections: dict[str, str], log: Path) -> RunFigures:
    env = {**os.environ, **connections}
    command = [sys.executable, "-m", "airflow", "dags", "test", dag_id, "-c", json.dumps(conf)]
    started = time.perf_counter()
    with log.open("w") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        # wait4: this child's own peak RSS, not the largest of every child so far.
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
    wall = time.perf_counter() - started

    from benefits_hub.staging import StagingArea
    from hub_sandbox.demo import latest_summary

    summary = latest_summary(dag_id)
    if summary is None:
        raise SystemExit(f"{dag_id} produced no Run Summary; see {log}")
    run_id = summary["integration_reference_id"]
    staging_root = Path(str(StagingArea(dag_id, run_id).root.path))
    return RunFigures(wall, usage.ru_maxrss / 1024, summary, stage_seconds(dag_id, run_id), staging_root)


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


def print_floor(figures: RunFigures, floor: Floor) -> None:
    print(f"  floor                  {floor.seconds:.1f} s  (the same data moved with nothing else)")
    for name, seconds in floor.parts.items():
        print(f"    {name:<20} {seconds:.1f} s")
    print(f"  hub / floor            {figures.task_seconds / max(floor.seconds, 1e-9):.2f}x  (task time)")
    print(f"  hub / floor (wall)     {figures.wall_seconds / max(floor.seconds, 1e-9):.2f}x  (with start-up)")


def print_scaling(name: str, rows: list[tuple[int, RunFigures, Floor]]) -> None:
    """One table per integration: every size, and the growth from 100k (or the second size) to 1M."""
    print(f"\n{name}: scaling")
    print(f"  {'records':>10} {'wall s':>8} {'tasks s':>8} {'floor s':>8} {'hub/floor':>9} {'peak MiB':>9}")
    for size, figures, floor in rows:
        ratio = figures.task_seconds / max(floor.seconds, 1e-9)
        print(
            f"  {size:>10,} {figures.wall_seconds:>8.1f} {figures.task_seconds:>8.1f} "
            f"{floor.seconds:>8.1f} {ratio:>8.2f}x {figures.peak_rss_mib:>9.0f}"
        )
    if len(rows) >= 2:
        (small, first, _), (large, last, _) = rows[-2], rows[-1]
        growth = last.task_seconds / max(first.task_seconds, 1e-9)
        memory = last.peak_rss_mib / max(first.peak_rss_mib, 1e-9)
        print(
            f"  growth {small:,} -> {large:,} ({large / small:.0f}x the records): "
            f"task time {growth:.1f}x, wall {last.wall_seconds / first.wall_seconds:.1f}x, "
            f"peak memory {memory:.2f}x"
        )


def parse_sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
