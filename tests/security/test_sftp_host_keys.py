"""SFTP host keys are verified for every vendor connection: a wrong key or no key is refused before a
byte is sent, a connection asking to skip the check is refused by the hub, and every SFTP connection the
sandbox writes carries the key its server really presents."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest

from benefits_hub.hooks.sftp import VendorSftpHook
from hub_sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]


def _with(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, conn_id: str, **extra: Any) -> str:
    """The sandbox's plansource_sftp connection under ``conn_id``, its extras replaced by ``extra``."""
    connection = {**sandbox.connections()["plansource_sftp"], "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return conn_id


def _upload(conn_id: str, name: str) -> None:
    VendorSftpHook(ssh_conn_id=conn_id, conn_retry_attempts=1).upload_atomic(io.BytesIO(b"census\n"), name)


def _served_host_key(sandbox: Sandbox) -> str:
    """The key the SFTP server presents in its handshake, read without authenticating."""
    transport = paramiko.Transport(("127.0.0.1", sandbox.sftp_port))
    try:
        transport.start_client(timeout=10)
        key = transport.get_remote_server_key()
        return f"{key.get_name()} {key.get_base64()}"
    finally:
        transport.close()


def test_the_right_host_key_connects(sandbox: Sandbox, no_known_hosts: None) -> None:
    _upload("plansource_sftp", "outbound/host-key-ok.csv")
    assert (sandbox.sftp_root / "outbound" / "host-key-ok.csv").read_bytes() == b"census\n"


def test_a_wrong_host_key_is_refused(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, no_known_hosts: None
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()
    conn_id = _with(monkeypatch, sandbox, "sftp_wrong_key", host_key=f"{other[0]} {other[1]}")
    with pytest.raises(paramiko.SSHException):
        _upload(conn_id, "outbound/never-wrong-key.csv")
    assert not [p for p in (sandbox.sftp_root / "outbound").iterdir() if "never-wrong-key" in p.name]


def test_no_host_key_at_all_is_refused_not_trusted_on_first_use(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, no_known_hosts: None
) -> None:
    conn_id = _with(monkeypatch, sandbox, "sftp_no_key")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        _upload(conn_id, "outbound/never-no-key.csv")
    assert not [p for p in (sandbox.sftp_root / "outbound").iterdir() if "never-no-key" in p.name]
    assert not (Path(os.environ["HOME"]) / ".ssh" / "known_hosts").exists()  # nothing was learnt


@pytest.mark.parametrize(
    "extra",
    [{"no_host_key_check": "true"}, {"no_host_key_check": True}, {"allow_host_key_change": "true"}],
    ids=["no_host_key_check", "no_host_key_check_bool", "allow_host_key_change"],
)
def test_a_connection_that_skips_the_check_is_refused(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, no_known_hosts: None, extra: dict[str, Any]
) -> None:
    if "allow_host_key_change" in extra:
        extra = {**extra, "host_key": sandbox.host_key}
    conn_id = _with(monkeypatch, sandbox, "sftp_unchecked", **extra)
    with pytest.raises(ValueError, match="host key verification off"):
        VendorSftpHook(ssh_conn_id=conn_id)
    # Asked for in code rather than in the connection: the same.
    with pytest.raises(ValueError, match="host key verification off"):
        VendorSftpHook(ssh_conn_id=_with(monkeypatch, sandbox, "sftp_keyless"), no_host_key_check=True)


def test_every_sftp_connection_the_sandbox_writes_pins_the_served_key(sandbox: Sandbox) -> None:
    served = _served_host_key(sandbox)
    env_file = sandbox.paths.env.read_text()
    sftp = {cid: c for cid, c in sandbox.connections().items() if c["conn_type"] == "sftp"}
    assert sftp, "the sandbox writes no SFTP connection"
    for conn_id, connection in sftp.items():
        assert connection["extra"] == {"host_key": served}, conn_id
        assert f"AIRFLOW_CONN_{conn_id.upper()}=" in env_file
    for switch in ("no_host_key_check", "allow_host_key_change", "ignore_hostkey_verification"):
        assert switch not in env_file


def test_nothing_in_the_repo_switches_host_key_checking_off() -> None:
    """Only this file names the switches (to prove they are refused)."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    here = str(Path(__file__).relative_to(REPO))
    switches = ("no_host_key_check", "allow_host_key_change", "ignore_hostkey_verification", "AutoAddPolicy")
    offenders = []
    for name in listing:
        path = REPO / name
        if (
            name == here
            or not path.is_file()
            or path.suffix not in (".py", ".json", ".yaml", ".yml", ".env", ".cfg")
        ):
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{name}: {s}" for s in switches if s in text and not _refusal(name, text, s)]
    assert offenders == []


def _refusal(name: str, text: str, switch: str) -> bool:
    # The hub's SFTP hook names two of the switches in order to refuse them.
    return name == "plugins/benefits_hub/hooks/sftp.py" and switch in (
        "no_host_key_check",
        "allow_host_key_change",
    )
