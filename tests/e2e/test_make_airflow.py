"""`make airflow` as a newcomer runs it: from a shell whose PATH lacks the venv, after a demo run.

Everything lives in a temporary Airflow home and sandbox directory (make variables and environment), on
free ports, so the developer's `.airflow/` and `.sandbox/` are never touched. The module first leaves what
`make demo` leaves, in small: a migrated home, a sandbox seeded with 30 employees, one integration run
through the demo's own code path, the sandbox stopped. Then `make airflow` must start the sandbox again
(keeping its 30 employees), print the UI's address and a login that works, serve the UI with every
standalone component up, show the demo run's task logs, and stop completely on Ctrl-C (SIGINT).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from hub_sandbox.server import CLIENT_SECRET, IJOIN_API_KEY, SFTP_PASSWORD
from tests.e2e.pii_scan import find_secrets, find_ssns

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
EXPORT_DAG = "plansource_hcm_demographic_export"
STAGES = ("validate", "extract", "transform", "deliver", "summary")
READY_TIMEOUT = 120.0
# The test is about the airflow recipe, not the venv it depends on: never let it start a reinstall.
MAKE = ["make", "-C", str(REPO), "-o", str(REPO / ".venv" / ".installed")]


@dataclass
class RunningUI:
    make: subprocess.Popen[bytes]
    output: Path
    base: str
    port: int
    home: Path
    sandbox_dir: Path
    demo_run_id: str

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _processes_of(home: Path) -> list[int]:
    """Every live process started for this Airflow home (AIRFLOW_HOME in its environment), whatever its
    session: make's, standalone's own, the sandbox's."""
    marker = f"AIRFLOW_HOME={home}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if state != "Z" and marker in environ:
            pids.append(int(entry.name))
    return pids


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub_sandbox.cli", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _stop(ui_make: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Ctrl-C in a terminal: SIGINT to make's whole process group."""
    if ui_make.poll() is None:
        os.killpg(ui_make.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            ui_make.wait(timeout)


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUI]:
    root = tmp_path_factory.mktemp("make-airflow")
    home, sandbox_dir, output = root / "airflow-home", root / "sandbox", root / "make-airflow.out"
    port = _free_port()
    sandbox_var = f"SANDBOX_DIR={sandbox_dir}"
    # A plain shell's environment: no venv on PATH, nothing of this test process's Airflow settings.
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(root)),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(home),
        # standalone's scheduler and triggerer serve logs on fixed ports (8793, 8794): free ones here
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
    }

    # What `make demo` leaves behind, in small.
    migrated = subprocess.run(
        [*MAKE, str(home / "airflow.db")], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    started = _cli("start", "--dir", str(sandbox_dir), "--employees", "30")
    assert started.returncode == 0, started.stderr
    demo_env = {
        **env,
        # what the Makefile exports to `make demo`
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__BENEFITS_HUB__STAGING_URL": (home / "staging").as_uri(),
    }
    script = (
        "import sys; from pathlib import Path; from hub_sandbox import Sandbox, demo; "
        "env = demo._airflow_env(Sandbox.attach(Path(sys.argv[1]))); "
        "demo.run_integration(demo.EXPORT_DAG, {'delta': False}, env, Path(sys.argv[2]), 'full run'); "
        "print('RUN_ID', demo.latest_run_id(demo.EXPORT_DAG))"
    )
    try:
        demo_run = subprocess.run(
            [sys.executable, "-c", script, str(sandbox_dir), str(home / "logs" / "demo")],
            env=demo_env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
    finally:
        stopped = _cli("stop", "--dir", str(sandbox_dir))
    assert demo_run.returncode == 0, demo_run.stdout[-3000:] + demo_run.stderr[-3000:]
    assert stopped.returncode == 0, stopped.stdout
    demo_run_id = re.search(r"^RUN_ID (\S+)$", demo_run.stdout, re.MULTILINE)[1]  # type: ignore[index]

    with output.open("wb") as sink:
        make = subprocess.Popen(
            [*MAKE, "airflow", sandbox_var, f"AIRFLOW__API__PORT={port}"],
            env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            # as from a terminal, whatever this test runs under (a background job ignores SIGINT)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    running = RunningUI(make, output, f"http://127.0.0.1:{port}", port, home, sandbox_dir, demo_run_id)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not _serving(running):
            if make.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make airflow did not get ready (exit {make.poll()}):\n{running.text()[-4000:]}")
            time.sleep(0.5)
        yield running
    finally:
        _stop(make)
        _cli("stop", "--dir", str(sandbox_dir))
        for pid in _processes_of(home):  # only if the SIGINT test failed: leave nothing behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# What each component standalone starts logs once it runs (standalone's own "Airflow is ready" banner
# waits for their heartbeats on top: seconds this test does not need to spend).
COMPONENT_STARTED = {
    "scheduler": "Starting the scheduler",
    "dag-processor": "Starting the Dag Processor Job",
    "triggerer": "Starting the triggerer",
}


def _serving(ui: RunningUI) -> bool:
    text = ui.text()
    if not all(re.search(rf"^{c} +\| .*{line}", text, re.MULTILINE) for c, line in COMPONENT_STARTED.items()):
        return False
    try:
        return requests.get(f"{ui.base}/api/v2/version", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _token(ui: RunningUI) -> str:
    login = re.search(r"log in: user (\S+), password (\S+)", ui.text())
    assert login, ui.text()[:3000]
    answer = requests.post(
        f"{ui.base}/auth/token", json={"username": login[1], "password": login[2]}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["access_token"])


def test_make_airflow_starts_every_component_without_the_venv_on_path(ui: RunningUI) -> None:
    text = ui.text()
    assert "FileNotFoundError" not in text  # standalone runs `airflow` from PATH for each component
    assert re.search(r"^api-server +\| ", text, re.MULTILINE), "no output from the api-server"
    for component, line in COMPONENT_STARTED.items():  # each one found `airflow` on PATH and runs
        assert re.search(rf"^{component} +\| .*{line}", text, re.MULTILINE), f"{component} did not start"
    # No sandbox was running: make airflow started it, keeping the 30 employees the demo run left.
    assert "sandbox started" in text and "(30 employees)" in text
    assert "data            kept from the last start" in text


def test_make_airflow_prints_the_address_and_a_login_that_works(ui: RunningUI) -> None:
    text = ui.text()
    assert f"Airflow UI: http://localhost:{ui.port}" in text
    # Printed before standalone starts, so it is there even though standalone echoes no password itself.
    assert text.index("log in: user admin, password ") < text.index("Starting Airflow Standalone")
    page = requests.get(f"{ui.base}/auth/login", timeout=30)
    assert page.status_code == 200 and '<div id="root"' in page.text
    assert requests.get(f"{ui.base}/", timeout=30).status_code == 200
    assert requests.get(f"{ui.base}/api/v2/dags", timeout=30).status_code == 401
    headers = {"Authorization": f"Bearer {_token(ui)}"}
    dags = requests.get(f"{ui.base}/api/v2/dags", headers=headers, timeout=30)
    assert dags.status_code == 200, dags.text


def test_a_demo_run_shows_its_task_logs_in_the_ui(ui: RunningUI) -> None:
    import sqlite3

    headers = {"Authorization": f"Bearer {_token(ui)}"}
    run = quote(ui.demo_run_id, safe="")
    # What each stage itself logs (the summary task: the Run Summary), not only Airflow's own lines.
    expected = {task_id: re.escape(f"{task_id} stage of run {ui.demo_run_id}") for task_id in STAGES}
    expected["summary"] = r"Run Summary\n(.*\n)*\s+status\s+Completed with Errors"
    logs: dict[str, str] = {}
    for task_id in STAGES:
        url = f"{ui.base}/api/v2/dags/{EXPORT_DAG}/dagRuns/{run}/taskInstances/{task_id}/logs/1"
        answer = requests.get(url, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        events = [str(line.get("event", "")) for line in answer.json()["content"]]
        assert any(re.search(expected[task_id], e) for e in events), events
        assert not any("Could not read served logs" in e for e in events), events
        logs[task_id] = json.dumps(answer.json())
    with sqlite3.connect(ui.sandbox_dir / "hcm.sqlite") as conn:
        ssns = [row[0] for row in conn.execute("SELECT ssn FROM hcm_person") if row[0]]
    texts = list(logs.items())
    assert find_ssns(texts, ssns) == []
    secrets = {"PlanSource": CLIENT_SECRET, "SFTP": SFTP_PASSWORD, "iJoin": IJOIN_API_KEY}
    assert find_secrets(texts, secrets) == []


def test_ctrl_c_stops_airflow_and_leaves_nothing_running(ui: RunningUI) -> None:
    sandbox_pid = json.loads((ui.sandbox_dir / "sandbox.json").read_text())["pid"]
    _stop(ui.make)
    assert ui.make.returncode is not None, f"make airflow still running after SIGINT:\n{ui.text()[-3000:]}"
    # standalone stopped its components itself: nothing was left for make airflow to clean up
    text = ui.text()
    assert "standalone | Complete" in text
    assert "airflow standalone left" not in text and "is not stopping" not in text
    assert _processes_of(ui.home) == [sandbox_pid], "only the sandbox may outlive make airflow"
    # The sandbox outlives the UI (its own session) until `make sandbox-stop`.
    stopped = subprocess.run(
        [*MAKE, "sandbox-stop", f"SANDBOX_DIR={ui.sandbox_dir}"],
        env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(sandbox_pid, 0)
