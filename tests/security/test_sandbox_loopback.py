"""The sandbox serves public demo credentials, so it answers on loopback only: it refuses any other
address through Sandbox.start and through both command lines before it seeds or starts anything, and a
running sandbox listens on 127.0.0.1 alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hub_sandbox import Sandbox

NOT_LOOPBACK = ["0.0.0.0", "::", "192.0.2.10", "10.0.0.1", "2001:db8::1", "localhost", "sandbox.example"]  # noqa: S104


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_sandbox_start_refuses_before_doing_anything(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        Sandbox.start(tmp_path / "sb", employees=10, host=host)
    assert not (tmp_path / "sb").exists()  # nothing seeded, no key made, no process started


def test_the_server_command_refuses_a_public_address(tmp_path: Path) -> None:
    # Every address form is covered above through the same check; this is the command's own path.
    done = _cli("hub_sandbox.server", "--dir", str(tmp_path), "--host", "0.0.0.0")  # noqa: S104
    assert done.returncode == 2 and "refusing to bind the sandbox to non-loopback" in done.stderr
    assert not (tmp_path / "sandbox.ready.json").exists()


def test_the_hub_sandbox_command_has_no_way_to_bind_elsewhere(tmp_path: Path) -> None:
    done = _cli("hub_sandbox.cli", "start", "--dir", str(tmp_path / "sb"), "--host", "0.0.0.0")  # noqa: S104
    assert done.returncode == 2 and "unrecognized arguments: --host" in done.stderr
    assert not (tmp_path / "sb").exists()


def _listening(ports: set[int]) -> dict[int, set[str]]:
    """Local addresses of the listening TCP sockets on ``ports`` (Linux /proc/net)."""
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.split(":")
            if state == "0A" and int(port, 16) in ports:  # 0A: LISTEN
                found.setdefault(int(port, 16), set()).add(address)
    return found


def test_a_running_sandbox_listens_on_loopback_only(sandbox: Sandbox) -> None:
    ports = {sandbox.http_port, sandbox.sftp_port, sandbox.ijoin_port}
    listening = _listening(ports)
    assert set(listening) == ports
    loopback_v4 = "0100007F"  # 127.0.0.1, as the kernel prints it
    assert all(addresses == {loopback_v4} for addresses in listening.values()), listening
