"""The sandbox process: the PlanSource-like API and the iJoin-like API (uvicorn, one port each) and the SFTP
server (asyncssh), all on one asyncio loop.

Run as ``python -m hub_sandbox.server --dir DIR ...`` (the CLI and :class:`hub_sandbox.Sandbox` start it
detached). It binds to loopback only, because it serves demo credentials, and writes
``DIR/sandbox.ready.json`` with the ports it actually bound once every server listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from hub_sandbox.ijoin_api import create_app as create_ijoin_app
from hub_sandbox.plansource_api import create_app
from hub_sandbox.recorder import Recorder, RecordingMiddleware
from hub_sandbox.sftp_server import start_sftp_server

# Demo credentials: fine only because the servers answer on loopback alone.
CLIENT_ID = "hub-sandbox-client"
CLIENT_SECRET = "hub-sandbox-secret"
SFTP_USER = "hub"
SFTP_PASSWORD = "hub-sandbox-password"
IJOIN_API_KEY = "hub-sandbox-ijoin-key"
READY_FILE = "sandbox.ready.json"


@dataclass(frozen=True)
class SandboxPaths:
    """Where everything of one sandbox lives, under one directory."""

    root: Path

    @property
    def hcm_db(self) -> Path:
        return self.root / "hcm.sqlite"

    @property
    def plansource_state(self) -> Path:
        return self.root / "plansource.sqlite"

    @property
    def recordkeeper_db(self) -> Path:
        return self.root / "recordkeeper.sqlite"

    @property
    def ijoin_state(self) -> Path:
        return self.root / "ijoin.sqlite"

    @property
    def sftp_root(self) -> Path:
        return self.root / "sftp"

    @property
    def ready(self) -> Path:
        return self.root / READY_FILE

    @property
    def info(self) -> Path:
        return self.root / "sandbox.json"

    @property
    def env(self) -> Path:
        return self.root / "airflow-connections.env"

    @property
    def log(self) -> Path:
        return self.root / "sandbox.log"

    @property
    def seed_marker(self) -> Path:
        return self.root / "seed.json"

    @property
    def pgp_home(self) -> Path:
        """GnuPG home with PlanSource's private key, when the sandbox was started with one."""
        return self.root / "pgp"


def stop_gpg_agent(home: Path) -> None:
    """gpg starts an agent per GnuPG home; it must not outlive the sandbox."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(  # noqa: S603
            ["gpgconf", "--homedir", str(home), "--kill", "all"],  # noqa: S607 - Debian's gnupg
            capture_output=True,
            timeout=10,
            check=False,
        )


def check_loopback(host: str) -> None:
    """Refuse anything but 127.0.0.0/8 or ::1: the sandbox's credentials are public."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"sandbox host must be a loopback IP address, not {host!r}") from None
    if not addr.is_loopback:
        raise ValueError(f"refusing to bind the sandbox to non-loopback address {host}")


class _Server(uvicorn.Server):
    # uvicorn re-raises SIGTERM after serving, which would kill us before the SFTP server closes;
    # the signals are handled by serve() below instead.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _write_json_atomic(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _stop_all(servers: list[uvicorn.Server]) -> None:
    for server in servers:
        server.should_exit = True


async def _exit_with_parent(servers: list[uvicorn.Server], parent_pid: int) -> None:
    # A test run killed before its teardown must not leave servers behind.
    while not all(s.should_exit for s in servers):
        if os.getppid() != parent_pid:
            _stop_all(servers)
        await asyncio.sleep(0.5)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this: without it, a keep-alive client waits out the 40 ms delayed ACK
    # on every response that is written in two parts (headers, then body).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


async def serve(
    directory: Path,
    host: str,
    http_port: int,
    sftp_port: int,
    token_ttl: int,
    parent_pid: int | None = None,
    ijoin_port: int = 0,
) -> None:
    check_loopback(host)
    paths = SandboxPaths(Path(directory).resolve())
    paths.ready.unlink(missing_ok=True)
    sock = _listen(host, http_port)
    ijoin_sock = _listen(host, ijoin_port)
    acceptor = await start_sftp_server(host, sftp_port, paths.sftp_root, paths.root, SFTP_USER, SFTP_PASSWORD)
    pgp_home = paths.pgp_home if paths.pgp_home.is_dir() else None
    app = create_app(paths.plansource_state, paths.sftp_root, CLIENT_ID, CLIENT_SECRET, token_ttl, pgp_home)
    ijoin_app = create_ijoin_app(paths.ijoin_state, IJOIN_API_KEY)
    # Off until a benchmark switches it on: the requests it records are replayed to measure the floor.
    recorder = Recorder()
    servers = [
        _Server(
            uvicorn.Config(
                RecordingMiddleware(app, "plansource", recorder),
                lifespan="on", log_level="info", access_log=False,
            )
        ),
        _Server(
            uvicorn.Config(
                RecordingMiddleware(ijoin_app, "ijoin", recorder),
                lifespan="on", log_level="info", access_log=False,
            )
        ),
    ]  # fmt: skip
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop_all, servers)
    tasks = [
        asyncio.create_task(servers[0].serve(sockets=[sock])),
        asyncio.create_task(servers[1].serve(sockets=[ijoin_sock])),
    ]
    watcher = asyncio.create_task(_exit_with_parent(servers, parent_pid)) if parent_pid else None
    try:
        while not all(s.started for s in servers):
            for task in tasks:
                if task.done():
                    task.result()  # raises what stopped uvicorn from starting
                    raise RuntimeError("an HTTP server stopped before it started")
            await asyncio.sleep(0.02)
        ready = {
            "pid": os.getpid(),
            "host": host,
            "http_port": sock.getsockname()[1],
            "sftp_port": acceptor.get_port(),
            "ijoin_port": ijoin_sock.getsockname()[1],
        }
        _write_json_atomic(paths.ready, ready)
        print(f"sandbox ready: {ready}", flush=True)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        _stop_all(servers)  # one stopped (signal, parent gone or crash): stop the other too
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
    finally:
        if watcher is not None:
            watcher.cancel()
        acceptor.close()
        await acceptor.wait_closed()
        if pgp_home is not None:
            stop_gpg_agent(pgp_home)
        paths.ready.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub_sandbox.server")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--sftp-port", type=int, default=0)
    parser.add_argument("--ijoin-port", type=int, default=0)
    parser.add_argument("--token-ttl", type=int, default=300)
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this parent process ends")
    args = parser.parse_args(argv)
    try:
        check_loopback(args.host)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(
        serve(
            args.dir,
            args.host,
            args.http_port,
            args.sftp_port,
            args.token_ttl,
            args.parent_pid,
            args.ijoin_port,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
