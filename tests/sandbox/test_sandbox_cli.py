"""The hub-sandbox CLI: start, status, env, stop, on small sandboxes; a restart keeps the seeded data."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from hub_sandbox import Sandbox
from hub_sandbox.generator import touch_employees

REPO = Path(__file__).resolve().parents[2]


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


def _city(hcm_db: Path, person_number: str) -> str:
    with sqlite3.connect(hcm_db) as conn:
        row = conn.execute("SELECT city FROM hcm_person WHERE person_number = ?", (person_number,)).fetchone()
    return str(row[0])


def _started(*args: str) -> Sandbox:
    """``hub-sandbox start`` (or a make target, when args start with "make") and the sandbox it started."""
    if args[0] == "make":
        # -o: the test is about the sandbox targets, not the venv they depend on (never reinstall here).
        done = subprocess.run(
            ["make", "-s", "-C", str(REPO), "-o", str(REPO / ".venv" / ".installed"), *args[1:]],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        directory = Path(next(a for a in args if a.startswith("SANDBOX_DIR=")).split("=", 1)[1])
    else:
        done = _cli("start", *args)
        directory = Path(args[args.index("--dir") + 1])
    assert done.returncode == 0, done.stdout + done.stderr
    return Sandbox.attach(directory)


def test_a_restart_keeps_the_seeded_data_and_reseed_starts_over(tmp_path: Path) -> None:
    """After `make demo` (1,000 employees) a plain `make sandbox-start` must not wipe what the demo left."""
    d = str(tmp_path / "sb")
    first = _started("--dir", d, "--employees", "30")
    try:
        assert first.info["employees"] == 30 and first.info["seeded_now"]
        touch_employees(first.hcm_db_path, ["E000001"], datetime.now(UTC), {"city": "Keptville"})
    finally:
        first.stop()

    # No size given: the 30 seeded employees and the edit stay (defaults would have been 200).
    again = _started("--dir", d)
    try:
        assert again.info["employees"] == 30 and not again.info["seeded_now"]
        assert _city(again.hcm_db_path, "E000001") == "Keptville"
        stats = requests.get(f"{again.plansource_url}/sandbox/stats", timeout=5).json()["data"]
        assert stats["subscribers"] == 29  # 30 people, one new hire
    finally:
        again.stop()

    # The same size given explicitly keeps the data too; another size seeds anew.
    same = _started("--dir", d, "--employees", "30", "--seed", "42")
    same.stop()
    assert not same.info["seeded_now"] and _city(same.hcm_db_path, "E000001") == "Keptville"

    # --reseed starts over at the defaults.
    fresh = _started("--dir", d, "--reseed")
    try:
        assert fresh.info["employees"] == 200 and fresh.info["seeded_now"]
        assert _city(fresh.hcm_db_path, "E000001") != "Keptville"
    finally:
        fresh.stop()


def test_make_sandbox_start_keeps_the_data_and_sandbox_reset_starts_over(tmp_path: Path) -> None:
    d = tmp_path / "sb"
    seeded = _started("--dir", str(d), "--employees", "30")
    seeded.stop()
    touch_employees(seeded.hcm_db_path, ["E000001"], datetime.now(UTC), {"city": "Keptville"})

    kept = _started("make", "sandbox-start", f"SANDBOX_DIR={d}")
    try:
        assert kept.info["employees"] == 30 and _city(kept.hcm_db_path, "E000001") == "Keptville"
        # sandbox-reset stops the running sandbox itself, then seeds the defaults anew and starts.
        reset = _started("make", "sandbox-reset", f"SANDBOX_DIR={d}")
    finally:
        if kept.is_running():
            kept.stop()
    try:
        assert reset.pid != kept.pid and not kept.is_running()
        assert reset.info["employees"] == 200 and reset.info["seeded_now"]
        assert _city(reset.hcm_db_path, "E000001") != "Keptville"
    finally:
        reset.stop()
