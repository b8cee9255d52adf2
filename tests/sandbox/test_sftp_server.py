"""The SFTP server through Airflow's own SFTPHook (paramiko), host key verification on; census ingest."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import paramiko
import pytest
import requests

from hub_sandbox import Sandbox
from hub_sandbox.server import check_loopback

ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - what the server must refuse


def _hook(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, **extra_override: object) -> object:
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    conn = sandbox.connections()["plansource_sftp"]
    conn = {**conn, **extra_override.pop("conn", {}), "extra": {**conn["extra"], **extra_override}}
    monkeypatch.setenv("AIRFLOW_CONN_PLANSOURCE_SFTP", json.dumps(conn))
    # One attempt: the refusals below must not wait through the hook's retry back-off.
    return SFTPHook(ssh_conn_id="plansource_sftp", conn_retry_attempts=1)


@pytest.fixture
def no_known_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # ~/.ssh/known_hosts would win over the host_key extra; keep the test about the extra.
    monkeypatch.setenv("HOME", str(tmp_path))
    yield


def _imports(sandbox: Sandbox) -> list[dict[str, object]]:
    return requests.get(f"{sandbox.plansource_url}/sandbox/census_imports", timeout=5).json()["data"]


def test_sftphook_connects_with_the_host_key_extra_and_renames_atomically(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_known_hosts: None
) -> None:
    hook = _hook(sandbox, monkeypatch)
    assert sorted(hook.list_directory("/")) == ["inbound", "outbound"]
    local = tmp_path / "census.csv"
    local.write_text(
        "employee_number,first_name,last_name,ssn,birthdate\n"
        "E000001,Omar,Williams,108010786,1965-08-30\n"
        "E000002,James,,116011571,2004-06-03\n"
    )
    hook.store_file("/inbound/census_20250701.csv.tmp", str(local))
    time.sleep(1.3)  # two census polls: a temporary name is never picked up
    assert (sandbox.sftp_root / "inbound" / "census_20250701.csv.tmp").exists()
    assert not [i for i in _imports(sandbox) if i["file_name"] == "census_20250701.csv"]

    with hook.get_managed_conn() as sftp:
        sftp.posix_rename("/inbound/census_20250701.csv.tmp", "/inbound/census_20250701.csv")
    deadline = time.monotonic() + 5
    while not (found := [i for i in _imports(sandbox) if i["file_name"] == "census_20250701.csv"]):
        assert time.monotonic() < deadline, "census file was not ingested"
        time.sleep(0.2)
    assert found[0]["rows"] == 2 and found[0]["accepted"] == 1 and found[0]["rejected"] == 1
    assert (sandbox.sftp_root / "inbound" / "processed" / "census_20250701.csv").exists()
    assert sorted(hook.list_directory("/inbound")) == ["processed"]


def test_chroot_keeps_clients_inside_the_sftp_root(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, no_known_hosts: None
) -> None:
    hook = _hook(sandbox, monkeypatch)
    assert sorted(hook.list_directory("/../..")) == ["inbound", "outbound"]
    assert not hook.path_exists("/hcm.sqlite")


def test_a_wrong_host_key_is_refused(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, no_known_hosts: None
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()
    hook = _hook(sandbox, monkeypatch, host_key=f"{other[0]} {other[1]}")
    with pytest.raises(paramiko.SSHException):
        hook.list_directory("/")


def test_a_wrong_password_is_refused(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, no_known_hosts: None
) -> None:
    hook = _hook(sandbox, monkeypatch, conn={"password": "wrong"})
    with pytest.raises(paramiko.AuthenticationException):
        hook.list_directory("/")


def test_the_server_refuses_a_non_loopback_bind(tmp_path: Path) -> None:
    for host in (ANY_ADDRESS, "192.168.1.10", "::", "localhost"):
        with pytest.raises(ValueError):
            check_loopback(host)
    check_loopback("127.0.0.2")
    check_loopback("::1")
    with pytest.raises(ValueError, match="non-loopback"):
        Sandbox.start(tmp_path, employees=10, host=ANY_ADDRESS)
    proc = subprocess.run(
        [sys.executable, "-m", "hub_sandbox.server", "--dir", str(tmp_path), "--host", ANY_ADDRESS],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "non-loopback" in proc.stderr
