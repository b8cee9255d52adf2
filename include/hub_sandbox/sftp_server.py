"""A real SFTP server (asyncssh) on loopback, chrooted to the sandbox's SFTP root.

Password authentication with demo credentials; an ed25519 host key generated on first start into the
sandbox directory (never committed), whose OpenSSH public key goes into the Airflow connection's
``host_key`` extra so that host key verification stays on even here. asyncssh's SFTP server answers
``posix-rename@openssh.com``, which the hub uses for atomic uploads (temporary name, then rename).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import asyncssh

HOST_KEY_NAME = "ssh_host_ed25519_key"
SFTP_DIRS = ("inbound", "inbound/processed", "outbound")


def ensure_host_key(directory: Path) -> asyncssh.SSHKey:
    """Load the sandbox host key, generating it on first use."""
    path = Path(directory) / HOST_KEY_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(str(path))
        path.chmod(0o600)
        return key
    return asyncssh.read_private_key(str(path))


def public_host_key(directory: Path) -> str:
    """The host key as 'ssh-ed25519 AAAA...' (no comment), the form SSHHook's host_key extra takes."""
    key = ensure_host_key(directory)
    line = key.export_public_key("openssh").decode().split()
    return f"{line[0]} {line[1]}"


def prepare_root(sftp_root: Path) -> None:
    for sub in SFTP_DIRS:
        (Path(sftp_root) / sub).mkdir(parents=True, exist_ok=True)


class _PasswordServer(asyncssh.SSHServer):
    def __init__(self, username: str, password: str) -> None:
        self._username, self._password = username, password

    def begin_auth(self, username: str) -> bool:
        return True  # always require authentication

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return secrets.compare_digest(username, self._username) and secrets.compare_digest(
            password, self._password
        )


async def start_sftp_server(
    host: str, port: int, sftp_root: Path, key_dir: Path, username: str, password: str
) -> asyncssh.SSHAcceptor:
    """Listen for SFTP on host:port (0 = any free port); the caller closes the returned acceptor."""
    root = Path(sftp_root).resolve()
    prepare_root(root)
    key = ensure_host_key(key_dir)

    def sftp_factory(chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
        return asyncssh.SFTPServer(chan, chroot=str(root).encode())

    return await asyncssh.listen(
        host,
        port,
        server_host_keys=[key],
        server_factory=lambda: _PasswordServer(username, password),
        sftp_factory=sftp_factory,
        allow_scp=False,
        # No shell or exec: an SFTP-only account, like a vendor's drop box.
        process_factory=None,
        encoding=None,
    )


def bound_port(acceptor: asyncssh.SSHAcceptor) -> int:
    return acceptor.get_port()
