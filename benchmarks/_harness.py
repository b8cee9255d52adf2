"""Shared by the benchmark scripts: run one DAG for real, read back its figures, print them with the floor."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
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
    stage_cpu: dict[str, float] = field(default_factory=dict)  # each stage's own CPU (its XCom)
    stage_own: dict[str, float] = field(default_factory=dict)  # each stage's own wall time (its XCom)

    def drop_staging(self) -> None:
        """Delete the run's staged files once its floor has read them: a 2M-participant run stages
        gigabytes, and the runs of earlier benches had filled the disk (60 GB)."""
        shutil.rmtree(self.staging_root, ignore_errors=True)

    @property
    def hub_seconds(self) -> float:
        """The hub's own time: its stages' work, without Airflow's start-up of each task around it."""
        return sum(self.stage_own.values()) if self.stage_own else self.task_seconds

    @property
    def airflow_seconds(self) -> float:
        """Airflow's own share of the wall time: `dags test` start-up, parsing, between-task scheduling,
        each task's start-up, the summary task (wall time less the hub's stages)."""
        return max(self.wall_seconds - self.hub_seconds, 0.0)

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
        print(f"  hub's own time         {self.hub_seconds:.1f} s  (its stages' work)")
        print(f"  Airflow's own time     {self.airflow_seconds:.1f} s  (start-up, parsing, task start-up)")
        for stage in STAGES:
            if stage in self.stage_seconds:
                own, cpu = self.stage_own.get(stage), self.stage_cpu.get(stage)
                both = own is not None and cpu is not None
                own_text = f"  (the stage {own:.1f} s, CPU {cpu:.1f} s)" if both else ""
                print(f"  {stage:<22} {self.stage_seconds[stage]:.1f} s{own_text}")
        rate = self.records / max(self.task_seconds, 1e-9)
        print(f"  throughput (stages)    {rate:,.0f} records/s")


def run_dag(dag_id: str, conf: dict[str, Any], connections: dict[str, str], log: Path) -> RunFigures:
    env = {**os.environ, **connections}
    command = [sys.executable, "-m", "airflow", "dags", "test", dag_id, "-c", json.dumps(conf)]
    if os.environ.get("BENCH_PROFILE"):  # a folder: each run's cProfile there, named as its log (slower)
        profile = Path(os.environ["BENCH_PROFILE"], log.stem + ".prof")
        command[1:1] = ["-m", "cProfile", "-o", str(profile)]
    started = time.perf_counter()
    with log.open("w") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        watch = _HighWater(proc.pid)
        # wait4: this child's own rusage, not the largest of every child so far.
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
    wall = time.perf_counter() - started
    peak_mib = watch.stop(fallback_kib=usage.ru_maxrss)

    from benefits_hub.staging import StagingArea
    from hub_sandbox.demo import latest_summary

    summary = latest_summary(dag_id)
    if summary is None:
        raise SystemExit(f"{dag_id} produced no Run Summary; see {log}")
    run_id = summary["integration_reference_id"]
    staging_root = Path(str(StagingArea(dag_id, run_id).root.path))
    return RunFigures(
        wall, peak_mib, summary, stage_seconds(dag_id, run_id), staging_root,
        *stage_figures(dag_id, run_id),
    )  # fmt: skip


class _HighWater:
    """The peak RSS of one child's own program, read from ``/proc/<pid>/status`` (``VmHWM``) until it
    exits.

    Not wait4's ``ru_maxrss``: Python starts a child with vfork, and at exec the kernel records the
    high-water mark of the memory the child borrowed, the benchmark's own (the sandbox's seeded
    data lives there), as the child's. A 200k-participant sync read 370 MiB that way against its
    own 296 MiB. ``VmHWM`` never goes down, so a sample every few milliseconds misses only what the
    program grows in its last ones. Where there is no ``/proc``, wait4's figure is kept."""

    def __init__(self, pid: int) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self._peak_kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="high-water", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            try:
                text = self._status.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self._peak_kib = max(self._peak_kib, int(line.split()[1]))
                    break
            self._done.wait(0.005)

    def stop(self, fallback_kib: int) -> float:
        self._done.set()
        self._thread.join()
        return (self._peak_kib or fallback_kib) / 1024


def stage_figures(dag_id: str, run_id: str) -> tuple[dict[str, float], dict[str, float]]:
    """Each stage's CPU and own wall seconds, as its task recorded them in its result (summed over
    mapped tasks)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    cpu: dict[str, float] = {}
    own: dict[str, float] = {}
    with create_session() as session:
        rows = session.query(XComModel.task_id, XComModel.value).filter_by(
            dag_id=dag_id, run_id=run_id, key="return_value"
        )
        for task_id, value in rows:
            result = json.loads(value) if isinstance(value, str | bytes) else value
            stage = task_id.rsplit(".", 1)[-1]
            # A task with a group of plans returns one result per plan (benefits_hub.operators.stages).
            entries = result.get("group", [result]) if isinstance(result, dict) else []
            for entry in entries:
                details = entry.get("details", {}) if isinstance(entry, dict) else {}
                for name, figures in (("cpu_seconds", cpu), ("stage_seconds", own)):
                    if details.get(name) is not None:
                        figures[stage] = figures.get(stage, 0.0) + float(details[name])
    return cpu, own


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
    base = max(floor.seconds, 1e-9)
    print(f"  hub / floor            {figures.hub_seconds / base:.2f}x  (the hub's own time)")
    print(f"  tasks / floor          {figures.task_seconds / base:.2f}x  (with each task's start-up)")
    print(f"  wall / floor           {figures.wall_seconds / base:.2f}x  (with Airflow's start-up)")


def print_scaling(name: str, rows: list[tuple[int, RunFigures, Floor]]) -> None:
    """One table per integration: every size, and the growth from 100k (or the second size) to 1M."""
    print(f"\n{name}: scaling")
    print(f"  {'records':>10} {'wall s':>8} {'hub s':>8} {'floor s':>8} {'hub/floor':>9} {'peak MiB':>9}")
    for size, figures, floor in rows:
        ratio = figures.hub_seconds / max(floor.seconds, 1e-9)
        print(
            f"  {size:>10,} {figures.wall_seconds:>8.1f} {figures.hub_seconds:>8.1f} "
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
    """``"100k,1M"`` (or ``"100000,1_000_000"``) to ``[100000, 1000000]``."""
    scale = {"k": 1_000, "m": 1_000_000}
    sizes = []
    for part in (p.strip().lower().replace("_", "") for p in text.split(",")):
        if part:
            sizes.append(int(float(part[:-1]) * scale[part[-1]]) if part[-1] in scale else int(part))
    return sizes


def record(integration: str, size: int, figures: RunFigures, floor: Floor, **extra: Any) -> None:
    """One row of the benchmark's results (benchmarks/results.py writes them to JSON and the chart)."""
    from benchmarks.results import add_row

    if os.environ.get("BENCH_PROFILE"):  # under cProfile the hub runs about twice as slow: not a figure
        print(f"  (profiled run: {integration} at {size:,} not recorded in the results)")
        return

    add_row(
        {
            "integration": integration,
            "size": size,
            "status": figures.summary["status"],
            "records": figures.records,
            "wall_seconds": round(figures.wall_seconds, 2),
            "hub_seconds": round(figures.hub_seconds, 2),
            "task_seconds": round(figures.task_seconds, 2),
            "airflow_seconds": round(figures.airflow_seconds, 2),
            "stage_seconds": {k: round(v, 2) for k, v in figures.stage_seconds.items()},
            "stage_own_seconds": {k: round(v, 2) for k, v in figures.stage_own.items()},
            "stage_cpu_seconds": {k: round(v, 2) for k, v in figures.stage_cpu.items()},
            "peak_rss_mib": round(figures.peak_rss_mib, 1),
            "floor_seconds": round(floor.seconds, 2),
            "floor_parts": {k: round(v, 2) for k, v in floor.parts.items()},
            "hub_over_floor": round(figures.hub_seconds / max(floor.seconds, 1e-9), 2),
            **extra,
        }
    )
