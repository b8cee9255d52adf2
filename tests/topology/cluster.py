"""The production topology on loopback, for tests/topology: a CeleryExecutor cluster with PostgreSQL
metadata, a Redis broker and S3 staging (moto's S3-compatible server), wired to the hub's sandbox.

It is the native twin of ``docker-compose.yaml``: the same components under the same service names,
the same ``AIRFLOW__*`` settings, the same set-up script (``docker/airflow-init.sh``). Every server is a
real process on a free 127.0.0.1 port, the leader of its own session, under one temporary directory;
:meth:`Cluster.stop` ends every process of every session (SIGTERM, then SIGKILL) and removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.postgres_server import PostgresServer, start_postgres

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = [sys.executable, "-m", "airflow"]
WORKERS = ("worker-a", "worker-b")
# What this module starts, by the service names docker-compose.yaml uses for the same components.
SERVICES = ("postgres", "redis", "s3", "sandbox", "airflow-init", "api-server", "scheduler", "dag-processor")
SERVICES += WORKERS
WORKER_CONCURRENCY = 2
STAGING_BUCKET = "hub-staging"
STAGING_CONN_ID = "hub_staging"
# moto takes any key pair; these only make the requests signed, as against a real store.
S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION = "hub-test", "hub-test-secret", "us-east-1"
START_TIMEOUT = 180.0  # seconds, for every server of the cluster to answer (2 busy cores)
STOP_GRACE = 15.0  # seconds between SIGTERM and SIGKILL


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _session_members(session_id: int) -> list[int]:
    """Every live process of a session: task processes put themselves in process groups of their own,
    but stay in the session of the worker that started them."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            # Fields after the command name (which may hold spaces): state ppid pgrp session ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session_id:
                members.append(int(entry.name))
    return members


@dataclass
class Service:
    """One server process, the leader of its own session, its output in ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to whatever is left of the session, then reap the leader."""
        for pid in [self.process.pid, *_session_members(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def wait_until(what: str, ready: Callable[[], bool], timeout: float, watch: list[Service]) -> None:
    """Poll ``ready`` until it holds; fail early, with its log, when a watched server died."""
    deadline = time.monotonic() + timeout
    while not ready():
        for service in watch:
            if not service.running():
                raise RuntimeError(f"{service.name} exited while waiting for {what}:\n{service.log_tail()}")
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {s.name}\n{s.log_tail(1500)}" for s in watch)
            raise RuntimeError(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.5)


@dataclass
class Cluster:
    root: Path
    redis_port: int = field(default_factory=free_port)
    s3_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    services: list[Service] = field(default_factory=list)
    postgres: PostgresServer | None = None
    sandbox: Any = None  # hub_sandbox.Sandbox
    env: dict[str, str] = field(default_factory=dict)

    # -- facts ------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow-home"

    def s3_client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name=S3_REGION,
        )

    # -- processes --------------------------------------------------------------------------------

    def spawn(
        self, name: str, cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Service:
        log_path = self.root / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env if env is not None else self.env, cwd=cwd or self.root, start_new_session=True,
            )  # fmt: skip
        service = Service(name, process, log_path)
        self.services.append(service)
        return service

    def run(self, name: str, cmd: list[str], timeout: float = 300) -> None:
        """A one-shot command in the cluster's environment; its output goes to logs/<name>.log."""
        service = self.spawn(name, cmd)
        try:
            code = service.process.wait(timeout)
        except subprocess.TimeoutExpired:
            service.kill()
            raise RuntimeError(f"{name} did not finish in {timeout:.0f}s:\n{service.log_tail()}") from None
        if code != 0:
            raise RuntimeError(f"{name} failed (exit {code}):\n{service.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to every server at once, a grace period, then SIGKILL to every process left."""
        for service in self.services:
            service.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for service in self.services:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(max(0.0, deadline - time.monotonic()))
        for service in self.services:
            service.kill()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.postgres is not None:
            self.postgres.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- configuration ----------------------------------------------------------------------------

    def airflow_env(self) -> dict[str, str]:
        """Every setting as an ``AIRFLOW__*`` variable, as in docker-compose.yaml; none inherited."""
        from cryptography.fernet import Fernet

        assert self.postgres is not None and self.sandbox is not None
        pg = self.postgres
        db = f"{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.dbname}"
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AIRFLOW", "AWS_", "HUB_", "BENEFITS_HUB_"))
        }
        return {
            **inherited,
            # The set-up script calls `airflow` and `python`: this interpreter's.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), inherited.get("PATH", "")]),
            "PYTHONPATH": str(REPO),  # for the hostname_callable below
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            # Both workers share this machine: each puts its HUB_WORKER_HOSTNAME in TaskInstance.hostname.
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.topology.hostname.worker_hostname",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{db}",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",  # the private server allows 50 connections
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{db}",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.airflow_home / "logs"),
            # The test triggers every run itself: no scheduled runs besides (the DAGs stay unchanged).
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # Parse once at start, not again every 30 s on two busy cores.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__BENEFITS_HUB__STAGING_URL": f"s3://{STAGING_BUCKET}/staging",
            "AIRFLOW__BENEFITS_HUB__STAGING_CONN_ID": STAGING_CONN_ID,
            f"AIRFLOW_CONN_{STAGING_CONN_ID.upper()}": json.dumps(
                {
                    "conn_type": "aws",
                    "login": S3_ACCESS_KEY,
                    "password": S3_SECRET_KEY,
                    "extra": {"endpoint_url": self.s3_endpoint, "region_name": S3_REGION},
                }
            ),
            # No instance metadata service here: boto must not wait for one.
            "AWS_EC2_METADATA_DISABLED": "true",
            **self.sandbox.connection_env(),
        }

    # -- start ------------------------------------------------------------------------------------

    def start(self, employees: int, plans: int, participants_per_plan: int) -> None:
        from hub_sandbox import Sandbox

        plain = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
        (self.root / "redis").mkdir()
        redis = self.spawn(
            "redis",
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
             "--appendonly", "no", "--dir", str(self.root / "redis")],
            env=plain,
        )  # fmt: skip
        s3 = self.spawn(
            "s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)], env=plain
        )
        self.sandbox = Sandbox.start(
            self.root / "sandbox", employees=employees, seed=42, token_ttl=300,
            plans=plans, participants_per_plan=participants_per_plan,
        )  # fmt: skip
        self.postgres = start_postgres("airflow")
        wait_until("Redis", lambda: _redis_answers(self.redis_port), 30, [redis])
        wait_until("the S3 server", lambda: _http_ok(f"{self.s3_endpoint}/"), 60, [s3])
        self.env = self.airflow_env()

        # The same one-shot set-up as the compose file's airflow-init service.
        self.run("airflow-init", ["bash", str(REPO / "docker" / "airflow-init.sh")])

        api = self.spawn(
            "api-server",
            [*AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"],
        )
        components = [
            api,
            self.spawn("scheduler", [*AIRFLOW, "scheduler"]),
            self.spawn("dag-processor", [*AIRFLOW, "dag-processor"]),
        ]
        workers = [self.spawn_worker(name) for name in WORKERS]
        components += workers
        api_ready = f"{self.api_url}/api/v2/version"
        wait_until("the api-server", lambda: _http_ok(api_ready), START_TIMEOUT, components)
        for worker in workers:
            wait_until(f"Celery {worker.name}", worker_ready(worker), START_TIMEOUT, components)

    def worker_disk(self, name: str) -> Path:
        """What stands for a worker machine's own disk: its AIRFLOW_HOME, HOME, temp dir, working dir."""
        return self.root / name

    def spawn_worker(self, name: str) -> Service:
        disk = self.worker_disk(name)
        (disk / "tmp").mkdir(parents=True)
        command = [
            *AIRFLOW, "celery", "worker", "--celery-hostname", f"{name}@%h",
            "--concurrency", str(WORKER_CONCURRENCY), "--pid", str(disk / "worker.pid"),
            # The log server would listen on every interface; the api-server reads task logs from
            # the log folder the workers share on this machine instead.
            "--skip-serve-logs",
        ]  # fmt: skip
        # Both workers share this machine, but not their local disk: a task that left a file in its
        # home, temp or working directory for a task on the other worker would not find it there.
        own_disk = {
            "AIRFLOW_HOME": str(disk / "airflow-home"),
            "HOME": str(disk),
            "TMPDIR": str(disk / "tmp"),
        }
        env = {**self.env, **own_disk, "HUB_WORKER_HOSTNAME": name}
        return self.spawn(name, command, env=env, cwd=disk)


def worker_ready(worker: Service) -> Callable[[], bool]:
    """Celery's line once the worker consumes from the broker: "worker-a@<host> ready."."""
    return lambda: any(
        f"{worker.name}@" in line and " ready." in line for line in worker.log_tail(20000).splitlines()
    )


def _redis_answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextlib.contextmanager
def running_cluster(employees: int, plans: int, participants_per_plan: int) -> Iterator[Cluster]:
    """The whole topology for the ``with`` block; every process stopped and the directory removed after."""
    # Not under pytest's tmp dir: PostgreSQL runs as its own user when the tests run as root.
    cluster = Cluster(root=Path(tempfile.mkdtemp(prefix="hub-cluster-")))
    try:
        cluster.start(employees, plans, participants_per_plan)
        yield cluster
    finally:
        cluster.stop()
