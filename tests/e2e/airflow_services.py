"""A whole Airflow, as a person meets it: api-server, scheduler, dag-processor and triggerer, started as
subprocesses on a fresh AIRFLOW_HOME and metadata DB of their own (SQLite), with this repo's DAGs and
plugins and the sandbox's connections. DAGs are paused at creation, as on a fresh install.

Used by the browser journeys: runs are created the way a person creates them (through the pages), and
the scheduler runs them for real, with the LocalExecutor.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.e2e.receivers import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("api-server", "dag-processor", "triggerer", "scheduler")


@dataclass
class AirflowServices:
    base_url: str
    home: Path
    env: dict[str, str]

    @property
    def db(self) -> Path:
        return self.home / "airflow.db"

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Airflow's REST API (the simple auth manager's all-admins mode: no token). Set-up only."""
        return requests.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "run_after", "limit": 100})
        answer.raise_for_status()
        return answer.json()["dag_runs"]

    def is_paused(self, dag_id: str) -> bool:
        answer = self.api("GET", f"/dags/{dag_id}")
        answer.raise_for_status()
        return bool(answer.json()["is_paused"])

    def parked(self, dag_id: str, task_id: str, run_id: str) -> bool:
        """The scheduler has taken the executor's report that the task's process ended after it
        deferred. Answering a HITL request before this races Airflow 3.3's executor-event handling:
        the resumed try can be marked failed ("state mismatch"). A person takes longer; a test waits."""
        log = self.home / "scheduler.log"
        wanted = f"task_id='{task_id}', run_id='{run_id}'"
        return log.exists() and any(
            "Received executor event" in line and f"dag_id='{dag_id}'" in line and wanted in line
            for line in log.read_text(errors="replace").splitlines()
        )

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.home.glob("*.log")))


def stop_services(processes: list[subprocess.Popen[bytes]], grace: float = 10) -> None:
    """SIGTERM to every service's process group at once, then SIGKILL to whatever is left after
    ``grace`` seconds (throwaway services on a throwaway DB: no need to wait for running tasks)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        if sig is signal.SIGTERM:
            wait_for(lambda: all(p.poll() is not None for p in processes), timeout=grace, interval=0.2)
    for process in processes:
        process.wait(timeout=10)


@contextmanager
def airflow_services(home: Path, extra_env: dict[str, str], *, dag_count: int) -> Iterator[AirflowServices]:
    """Start the four services on ``home`` and wait until the dag-processor has parsed ``dag_count``
    DAGs; stop them all on exit."""
    home.mkdir(parents=True, exist_ok=True)
    if os.environ.get("HUB_TEST_HOMES_FILE"):  # its task logs, XComs and error files: for the PII scan
        with open(os.environ["HUB_TEST_HOMES_FILE"], "a", encoding="utf-8") as homes:
            homes.write(f"{home}\n")
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__BENEFITS_HUB__STAGING_URL": (home / "staging").as_uri(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        # A fresh DAG is picked up within seconds, and queued runs start promptly.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # ...but the DAG files do not change while a test runs: re-parsing each every 30 s (the default)
        # kept half a core busy per idle Airflow, measured, on a 2-core suite running two at once.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__CORE__PARALLELISM": "4",
        **extra_env,
    }
    # The same one-shot set-up as `make` and a cluster (metadata DB, vendor pools, staging); the script
    # runs `airflow` and `python` from PATH: this interpreter's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(
        ["bash", str(REPO / "docker" / "airflow-init.sh")], env=env, check=True, capture_output=True
    )
    with ExitStack() as stack:
        processes: list[subprocess.Popen[bytes]] = []
        stack.callback(stop_services, processes)
        for name in SERVICES:
            log = stack.enter_context((home / f"{name}.log").open("w"))
            args = (
                ["api-server", "--host", "127.0.0.1", "--port", str(port)] if name == "api-server" else [name]
            )
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "airflow", *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
        services = AirflowServices(base_url=f"http://127.0.0.1:{port}", home=home, env=env)

        def parsed() -> bool:
            try:
                answer = services.api("GET", "/dags", params={"limit": 100})
            except requests.RequestException:
                return False
            return answer.status_code == 200 and answer.json()["total_entries"] >= dag_count

        assert wait_for(parsed, timeout=180, interval=1), f"the DAGs were not parsed\n{services.logs()}"
        yield services
