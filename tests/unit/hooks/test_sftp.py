from __future__ import annotations

import io
import json
import os
from typing import Any

import paramiko
import pytest

from benefits_hub.hooks.sftp import VendorSftpHook


def test_upload_is_atomic(sandbox: Any) -> None:
    payload = b"employee_number,last_name\nE1,Lovelace\n" * 1000
    written = VendorSftpHook(ssh_conn_id="plansource_sftp").upload_atomic(
        io.BytesIO(payload), "outbound/x.csv"
    )
    assert written == len(payload)
    outbound = sandbox.sftp_root / "outbound"
    assert (outbound / "x.csv").read_bytes() == payload
    assert [p.name for p in outbound.iterdir()] == ["x.csv"]


class _BrokenSource(io.RawIOBase):
    """A source that fails halfway, like a staging read dropped mid-transfer."""

    def __init__(self) -> None:
        self.sent = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.sent > 64 * 1024:
            raise OSError("connection dropped")
        n = min(len(buffer), 32 * 1024)
        buffer[:n] = b"x" * n
        self.sent += n
        return n


def test_interrupted_upload_leaves_no_file(sandbox: Any) -> None:
    with pytest.raises(OSError, match="connection dropped"):
        VendorSftpHook(ssh_conn_id="plansource_sftp").upload_atomic(_BrokenSource(), "outbound/broken.csv")
    assert not [p for p in (sandbox.sftp_root / "outbound").iterdir() if "broken" in p.name]


def test_wrong_host_key_is_refused(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_PLANSOURCE_SFTP"])
    # A valid ed25519 key that is not the server's.
    conn["extra"]["host_key"] = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    )
    monkeypatch.setenv("AIRFLOW_CONN_WRONG_KEY", json.dumps(conn))
    with pytest.raises(paramiko.SSHException) as refused:
        VendorSftpHook(ssh_conn_id="wrong_key").upload_atomic(io.BytesIO(b"x"), "outbound/never.csv")
    assert "key" in str(refused.value).lower()
    assert not (sandbox.sftp_root / "outbound" / "never.csv").exists()


def test_compression_is_off_on_loopback_on_elsewhere_and_the_extra_decides() -> None:
    from benefits_hub.hooks.sftp import wants_compression

    assert not wants_compression("127.0.0.1", None) and not wants_compression("localhost", "")
    assert not wants_compression("::1", None)
    assert wants_compression("sftp.plansource.example", None) and wants_compression("10.1.2.3", None)
    assert wants_compression("127.0.0.1", "true") and not wants_compression(
        "sftp.plansource.example", "false"
    )
