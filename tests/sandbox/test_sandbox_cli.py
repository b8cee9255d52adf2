"""The hub-sandbox CLI: start, status, env, stop, on a second small sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from hub_sandbox import Sandbox


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub_sandbox.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_start_status_env_stop(tmp_path: Path) -> None:
    d = str(tmp_path / "sb")
    started = _cli("start", "--dir", d, "--employees", "10", "--token-ttl", "60")
    assert started.returncode == 0, started.stderr
    try:
        sandbox = Sandbox.attach(Path(d))
        assert sandbox.is_running()
        assert _cli("start", "--dir", d).returncode == 1  # already running
        assert _cli("status", "--dir", d).returncode == 0
        env = _cli("env", "--dir", d).stdout
        assert env == (tmp_path / "sb" / "airflow-connections.env").read_text()
        names = [line.split("=", 1)[0] for line in env.splitlines()]
        assert names == ["export AIRFLOW_CONN_HCM_DB", "export AIRFLOW_CONN_PLANSOURCE_API",
                         "export AIRFLOW_CONN_PLANSOURCE_SFTP", "export AIRFLOW_CONN_RECORDKEEPER_DB",
                         "export AIRFLOW_CONN_IJOIN_API"]  # fmt: skip
        conns = {k: json.loads(v) for k, v in sandbox.connection_env().items()}
        assert conns["AIRFLOW_CONN_PLANSOURCE_API"]["port"] == sandbox.http_port
        assert "extra" not in conns["AIRFLOW_CONN_PLANSOURCE_API"]
        assert conns["AIRFLOW_CONN_PLANSOURCE_SFTP"]["extra"]["host_key"].startswith("ssh-ed25519 AAAA")
        assert Path(conns["AIRFLOW_CONN_HCM_DB"]["host"]) == sandbox.hcm_db_path
        stats = requests.get(f"{sandbox.plansource_url}/sandbox/stats", timeout=5).json()["data"]
        assert stats["subscribers"] == 9  # 10 people, one new hire
    finally:
        stopped = _cli("stop", "--dir", d)
    assert stopped.returncode == 0, stopped.stderr
    pid = sandbox.pid
    try:
        os.kill(pid, 0)
        raise AssertionError("sandbox process still alive")
    except ProcessLookupError:
        pass
    assert _cli("status", "--dir", d).returncode == 1


def test_a_test_sandbox_stops_when_its_parent_dies(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from hub_sandbox import Sandbox; "
        "sb = Sandbox.start(Path(sys.argv[1]), employees=10); print(sb.pid, flush=True)"
    )
    parent = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            timeout=60, check=True)  # fmt: skip
    pid = int(parent.stdout.split()[0])  # the parent has exited without stopping its sandbox
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "orphaned sandbox kept running"
        time.sleep(0.1)
