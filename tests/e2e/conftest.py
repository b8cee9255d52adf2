"""End-to-end fixtures: a real Airflow metadata DB, the real sandbox servers, real DAG runs.

No mocks here. Each test gets a freshly seeded sandbox (SFTP server, PlanSource-like API, HCM
database) on free loopback ports, its connections exported as ``AIRFLOW_CONN_*`` variables (as
mozilla/telemetry-airflow does with dev connections), and clean hub state (watermark, fingerprints).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

SSN_LOG = Path(os.environ["AIRFLOW_HOME"]) / "seeded_ssns.txt"
BIRTH_DATE_LOG = Path(os.environ["AIRFLOW_HOME"]) / "seeded_birth_dates.txt"
TASK_LOG_DIR = Path(os.environ["AIRFLOW_HOME"]) / "logs" / "e2e"


@contextmanager
def _capture_output(path: Path) -> Iterator[None]:
    """Send everything this process prints (Python streams and file descriptors 1, 2) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    saved_streams = sys.stdout, sys.stderr
    with path.open("a", encoding="utf-8", buffering=1) as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        sys.stdout = sys.stderr = sink
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            os.close(saved_fds[0])
            os.close(saved_fds[1])


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """``airflow db migrate`` once per session into the test AIRFLOW_HOME (SQLite)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )


@pytest.fixture
def sandbox(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with started_sandbox(tmp_path_factory, monkeypatch, employees=200) as box:
        yield box


@contextmanager
def started_sandbox(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    *,
    employees: int,
    **sizes: int,
) -> Iterator[Any]:
    """A freshly seeded sandbox of ``employees`` people (``sizes``: ``plans``, ``participants_per_plan``
    of the recordkeeper), its connections in this test's env."""
    from hub_sandbox import Sandbox

    directory = tmp_path_factory.mktemp("sandbox")
    box = Sandbox.start(directory, employees=employees, seed=42, token_ttl=300, **sizes)
    try:
        for name, value in box.connection_env().items():
            monkeypatch.setenv(name, value)
        _remember_ssns(box.hcm_db_path, box.plansource_state_path, box.recordkeeper_db_path)
        yield box
    finally:
        box.stop()


def _remember_ssns(hcm_db: Path, plansource_state: Path, recordkeeper: Path | None = None) -> None:
    """Every seeded SSN and full birth date, HCM's, PlanSource's and the recordkeeper's, for the
    whole-suite scan (tests/e2e/test_zz_no_pii_in_logs.py)."""
    import sqlite3

    ssns: set[str] = set()
    birth_dates: set[str] = set()
    sources = [
        (hcm_db, "SELECT ssn, birth_date FROM hcm_person"),
        (plansource_state, "SELECT ssn, birthdate FROM subscriber"),
    ]
    if recordkeeper is not None:
        sources.append((recordkeeper, "SELECT ssn, birth_date FROM rk_participant"))
    for db, sql in sources:
        with sqlite3.connect(db) as conn:
            for ssn, birth_date in conn.execute(sql):
                if ssn:
                    ssns.add(ssn)
                if birth_date:
                    birth_dates.add(birth_date)
    with SSN_LOG.open("a") as handle:
        handle.writelines(f"{ssn}\n" for ssn in ssns)
    with BIRTH_DATE_LOG.open("a") as handle:
        handle.writelines(f"{birth_date}\n" for birth_date in birth_dates)


@pytest.fixture
def clean_hub_state(airflow_db: None) -> None:
    """Forget watermarks and delivered fingerprints left by earlier tests (they share DAG ids)."""
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(VariableModel).filter(VariableModel.key.like("benefits_hub.%")).delete(
            synchronize_session=False
        )
    staging = Path(os.environ["AIRFLOW__BENEFITS_HUB__STAGING_URL"].removeprefix("file://"))
    shutil.rmtree(staging / "_state", ignore_errors=True)


@dataclass
class RunOutcome:
    state: str
    run_id: str
    summary: dict[str, Any] | None
    task_states: dict[str, str]
    log_path: Path | None = None  # everything the run's tasks logged

    @property
    def log(self) -> str:
        assert self.log_path is not None
        return self.log_path.read_text(errors="replace")

    def error_rows(self) -> list[dict[str, str]]:
        import csv

        assert self.summary and self.summary["error_files"], "the run has no error file"
        path = Path(self.summary["error_files"][0].removeprefix("file://"))
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))


# dag.test() waits for ever on a human-in-the-loop task (only an answer from outside moves it on), so a
# test whose answer never comes (its answering thread failed, or a run held that should not have been)
# would hang the suite. Past this, the waiting task is failed and run_dag says so.
HITL_WAIT_LIMIT = 180.0


@contextmanager
def _unanswered_requests_fail(dag_id: str) -> Iterator[list[str]]:
    """Fail this DAG's tasks that wait for input longer than HITL_WAIT_LIMIT; yields their ids."""
    import threading
    from datetime import UTC, datetime

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    failed: list[str] = []
    done = threading.Event()

    def watch() -> None:
        waiting_since: dict[str, float] = {}
        while not done.wait(2):
            with create_session() as session:
                waiting = (
                    session.query(TaskInstance)
                    .filter_by(dag_id=dag_id, state=TaskInstanceState.AWAITING_INPUT)
                    .all()
                )
                for ti in waiting:
                    since = waiting_since.setdefault(str(ti.id), time.monotonic())
                    if time.monotonic() - since > HITL_WAIT_LIMIT:
                        ti.state = TaskInstanceState.FAILED
                        ti.end_date = datetime.now(UTC)
                        failed.append(ti.task_id)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield failed
    finally:
        done.set()
        watcher.join(timeout=30)


def run_dag(dag_id: str, conf: dict[str, Any] | None = None) -> RunOutcome:
    """Run a DAG with ``dag.test()`` in this process, against whatever connections are in the env."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    repo = Path(__file__).resolve().parents[2]
    bag = DagBag(str(repo / "dags" / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        # Keep the DAG's retries (they are part of what is tested) but not minutes of waiting.
        task.retry_delay = timedelta(seconds=1)
        task.max_retry_delay = timedelta(seconds=2)
    # Everything the tasks log goes to a file per run: these are the task logs the PII scan reads.
    log_dir = TASK_LOG_DIR / dag_id
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"run-{len(list(log_dir.iterdir())):03d}.log"
    with _capture_output(log_path), _unanswered_requests_fail(dag_id) as unanswered:
        dag_run = dag.test(run_conf=conf or {})
    assert not unanswered, (
        f"{dag_id}: {unanswered} waited {HITL_WAIT_LIMIT:.0f}s for a human answer that never came"
    )
    with create_session() as session:
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=dag_run.run_id, task_id="summary", key="return_value")
            .first()
        )
        summary = None
        if row is not None:
            summary = row.value if isinstance(row.value, dict) else json.loads(row.value)
    return RunOutcome(
        state=str(dag_run.state),
        run_id=dag_run.run_id,
        summary=summary,
        task_states=states,
        log_path=log_path,
    )


@contextmanager
def running_api_server(extra_env: dict[str, str], log_name: str = "api-server.log") -> Iterator[str]:
    """A real ``airflow api-server`` (with this repo's plugins) on a free 127.0.0.1 port, sharing this
    session's metadata DB; yields its base URL and stops it on exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, **extra_env}
    log = open(os.path.join(os.environ["AIRFLOW_HOME"], log_name), "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base}/api/v2/version", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the api-server did not start; see {log.name}")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def api_server(airflow_db: None) -> Iterator[str]:
    """One api-server for the session's tests; every caller is an admin (the simple auth manager's
    all-admins mode), so tests call its REST API and pages without logging in."""
    with running_api_server({"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}) as base:
        yield base


@pytest.fixture
def plansource_admin(sandbox: Any):
    """Read the sandbox PlanSource's raw state (its /sandbox admin routes)."""

    class Admin:
        base = sandbox.plansource_url

        def subscriber(self, employee_number: str) -> dict[str, Any] | None:
            response = requests.get(f"{self.base}/sandbox/subscribers/{employee_number}", timeout=10)
            if response.status_code == 404:
                return None
            response.raise_for_status()
            body = response.json()
            return body.get("data", body)

        def stats(self) -> dict[str, Any]:
            body = requests.get(f"{self.base}/sandbox/stats", timeout=10).json()
            return body.get("data", body)

        def census_imports(self) -> list[dict[str, Any]]:
            body = requests.get(f"{self.base}/sandbox/census_imports", timeout=10).json()
            return body.get("data", body)

    return Admin()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL server for the session: a private cluster on a free 127.0.0.1 port.

    Yields a ``tests.postgres_server.PostgresServer``: ``host, port, user, password, dbname``, ``dsn``,
    ``dsn_for(db)``, ``create_database(db)`` (fresh, returns its DSN) and ``connection_json(db)`` (an
    Airflow ``postgres`` connection for ``AIRFLOW_CONN_*``). Fails, never skips, without the binaries.
    """
    from tests.postgres_server import PostgresUnavailable, start_postgres

    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:
        pytest.fail(missing, pytrace=False)
    try:
        yield server
    finally:
        server.stop()
