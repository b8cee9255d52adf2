"""A run that has not finished in its expected time raises a deadline alert, for real.

Airflow's deadline alerts need its services: the scheduler notices the missed deadline and queues the
callback, the triggerer runs it (``benefits_hub.deadlines.deadline_missed`` is async), the
dag-processor parses the DAG, and the api-server serves the execution API the running task talks to.
They run here as subprocesses on a metadata DB of their own (SQLite, in a private AIRFLOW_HOME): a
scheduler on the session's DB would also pick up other tests' runs, and a dag-processor pointed at
another DAGs folder would mark the repo's DAGs as deleted there.

The probe DAG uses the same ``finish_within`` helper as the integration DAGs, with a deadline of
3 seconds and a task that takes 90; the alert must reach a real HTTP receiver through the
notification rules in the Variable ``benefits_hub.notifications``.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import pytest
import requests

from tests.e2e.airflow_services import stop_services
from tests.e2e.receivers import WebhookReceiver, free_port, wait_for, webhook_receiver

pytestmark = pytest.mark.e2e

PROBE = "deadline_probe"
PROBE_DAG = textwrap.dedent(
    f'''
    """Deadline probe: a run that cannot finish within its 3 seconds."""
    import time
    from datetime import datetime, timedelta

    from airflow.sdk import DAG, task

    from benefits_hub.deadlines import finish_within

    with DAG(
        dag_id="{PROBE}",
        schedule="@once",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        deadline=finish_within(timedelta(seconds=3)),
    ):

        @task
        def slow_vendor() -> None:
            time.sleep(90)

        slow_vendor()
    '''
)
SERVICES = ("api-server", "dag-processor", "triggerer", "scheduler")


def _airflow(*args: str, env: dict[str, str], log: IO[str]) -> subprocess.Popen[bytes]:
    # A session of its own: teardown stops the service and every process it started, by group id.
    return subprocess.Popen(
        [sys.executable, "-m", "airflow", *args],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip


@pytest.fixture
def airflow_services(tmp_path: Path) -> Iterator[tuple[WebhookReceiver, Path, str]]:
    """A webhook receiver, and Airflow's services running the probe DAG on a private metadata DB."""
    home = tmp_path / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / f"{PROBE}.py").write_text(PROBE_DAG)
    port = free_port()
    with ExitStack() as stack:
        webhook = stack.enter_context(webhook_receiver())
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            # Unpaused below, once the api-server answers (the task talks to its execution API).
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW_CONN_HUB_WEBHOOK": webhook.connection_json(),
        }
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
        )
        logs = {name: stack.enter_context((home / f"{name}.log").open("w")) for name in SERVICES}
        services: list[subprocess.Popen[bytes]] = []
        stack.callback(stop_services, services, 5)
        # All at once, to overlap their start-up; the probe runs only once it is unpaused below.
        services.append(
            _airflow(
                "api-server", "--host", "127.0.0.1", "--port", str(port), env=env, log=logs["api-server"]
            )
        )
        services.extend(_airflow(name, env=env, log=logs[name]) for name in SERVICES[1:])
        # The notification rule, set the way an operator would (while the services start).
        rules = [{"integrations": [PROBE], "statuses": ["Deadline missed"], "webhook_conn_id": "hub_webhook"}]
        set_rules = ["variables", "set", "benefits_hub.notifications", json.dumps(rules)]
        subprocess.run(
            [sys.executable, "-m", "airflow", *set_rules], env=env, check=True, capture_output=True
        )
        base_url = f"http://127.0.0.1:{port}"

        def unpaused() -> bool:
            # 404 until the dag-processor has parsed the probe; refused until the api-server is up.
            try:
                answer = requests.patch(
                    f"{base_url}/api/v2/dags/{PROBE}", json={"is_paused": False}, timeout=5
                )
            except requests.RequestException:
                return False
            return answer.status_code == 200

        assert wait_for(unpaused, timeout=150, interval=1), f"could not unpause the probe; see {home}/*.log"
        yield webhook, home, base_url


def _probe_task_state(home: Path) -> str | None:
    with sqlite3.connect(home / "airflow.db", timeout=30) as db:
        row = db.execute("SELECT state FROM task_instance WHERE dag_id = ?", (PROBE,)).fetchone()
    return row[0] if row else None


def test_a_run_that_overruns_its_deadline_raises_an_alert(
    airflow_services: tuple[WebhookReceiver, Path, str],
) -> None:
    webhook, home, base_url = airflow_services

    arrived = wait_for(lambda: bool(webhook.received), timeout=150, interval=1)

    logs = "\n".join(f"{p.name}: {p.read_text()[-1500:]}" for p in sorted(home.glob("*.log")))
    assert arrived, f"no deadline alert reached the webhook receiver\n{logs}"
    [alert] = webhook.received
    assert alert.path == "/services/T000/B000/hub"
    assert alert.headers.get("Content-Type") == "application/json"
    text = alert.text
    assert text.startswith(f"[Benefits hub] Deadline missed: {PROBE} not finished within 3 seconds")
    assert "Status: Deadline missed (the run is running in Airflow)" in text
    assert "Reference id: scheduled__" in text
    # The run was late because its task was still at work (not because nothing ran at all).
    assert wait_for(lambda: _probe_task_state(home) == "running", timeout=60), _probe_task_state(home)
    # Links under Airflow's [api] base_url: the run page and the Activity Monitor's detail page.
    assert f"Airflow run: {base_url}/dags/{PROBE}/runs/scheduled__" in text
    assert f"Activity Monitor: {base_url}/activity-monitor/runs/{PROBE}/scheduled__" in text
