"""A real OpenSSH ``sshd`` (Debian's openssh-server, installed by ``make system-deps``), started
privately on loopback for one test module: its own host key, config, authorized key and SFTP folder.

Only SFTP is served (``ForceCommand internal-sftp``), rooted at the folder the test reads, so what the
hub uploaded is checked on disk exactly as the server wrote it.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class OpenSshServer:
    port: int
    root: Path  # the SFTP session starts here: "inbound/x.csv" is root / "inbound/x.csv"
    host_key: str  # "ssh-ed25519 AAAA...", the form the connection's host_key extra takes
    client_key: Path
    log: Path

    def connection(self, host_key: str | None = None) -> dict[str, object]:
        """An Airflow connection (as ``AIRFLOW_CONN_*`` JSON takes it) logging in with the client key."""
        return {
            "conn_type": "sftp",
            "host": "127.0.0.1",
            "port": self.port,
            "login": getpass.getuser(),
            "extra": {"key_file": str(self.client_key), "host_key": host_key or self.host_key},
        }


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True
    )  # fmt: skip
    kind, key, *_ = path.with_suffix(".pub").read_text().split()
    return f"{kind} {key}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def openssh_server(directory: Path) -> Iterator[OpenSshServer]:
    assert SSHD.exists(), f"{SSHD} is missing: run `make system-deps` (Debian package openssh-server)"
    directory.mkdir(parents=True, exist_ok=True)
    root = directory / "sftp"
    (root / "inbound").mkdir(parents=True, exist_ok=True)
    host_key = _keygen(directory / "host_ed25519")
    client_public = _keygen(directory / "client_ed25519")
    (directory / "authorized_keys").write_text(client_public + "\n")
    if os.geteuid() == 0:  # sshd started by root checks its privilege-separation directory
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = _free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory / 'host_ed25519'}\n"
        f"PidFile {directory / 'sshd.pid'}\nAuthorizedKeysFile {directory / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        f"AllowUsers {getpass.getuser()}\nSubsystem sftp internal-sftp\n"
        f"ForceCommand internal-sftp -d {root}\nLogLevel VERBOSE\n"
    )
    log = directory / "sshd.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, f"sshd exited: {log.read_text()}"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    if probe.recv(4).startswith(b"SSH-"):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"sshd did not listen: {log.read_text()}"
            time.sleep(0.1)
        yield OpenSshServer(port, root, host_key, directory / "client_ed25519", log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
