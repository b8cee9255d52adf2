"""A throwaway PostgreSQL server for the tests: a private cluster in a temp dir, on a free loopback port.

The binaries come from the Debian ``postgresql`` package, which ``make test`` installs (``make
system-deps``). PostgreSQL refuses to run as root, so when the tests run as root (CI does) the cluster
belongs to the package's ``postgres`` system user and every server command runs as that user.

    with postgres_server() as pg:
        dsn = pg.create_database("hcm")
        os.environ["AIRFLOW_CONN_HCM_DB"] = pg.connection_json("hcm")
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER_USER = "postgres"  # the system user the Debian package creates
LOGIN_ROLE = "hub"
DEFAULT_DB = "hub"
START_TIMEOUT = 60  # seconds, for pg_ctl -w
INSTALL_HINT = (
    "run `make test` (or `make system-deps`), which installs the Debian `postgresql` package "
    "(apt-get install postgresql)"
)


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries (initdb, pg_ctl) or a user to run them as are missing."""


def find_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl: the newest /usr/lib/postgresql/<v>/bin, else PATH."""
    candidates = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")),
        key=lambda d: [int(x) if x.isdigit() else 0 for x in d.parent.name.split(".")],
        reverse=True,
    )
    for directory in candidates:
        if (directory / "initdb").exists():
            return directory
    found = shutil.which("pg_ctl")
    if found and (Path(found).parent / "initdb").exists():
        return Path(found).parent
    raise PostgresUnavailable(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running private cluster; connect over TCP as ``user``/``password`` (scram-sha-256)."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    bin_dir: Path
    root: Path
    socket_dir: Path
    started_in: float = 0.0  # seconds from initdb to accepting logins
    _run_as: list[str] = field(default_factory=list, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def dsn_for(self, dbname: str | None = None) -> str:
        """A libpq key/value DSN (psycopg2 / psycopg accept it as is)."""
        return (
            f"host={self.host} port={self.port} user={self.user} "
            f"password={self.password} dbname={dbname or self.dbname}"
        )

    @property
    def dsn(self) -> str:
        return self.dsn_for()

    def connection(self, dbname: str | None = None) -> dict[str, Any]:
        """An Airflow ``postgres`` connection (dict) for ``dbname``."""
        return {
            "conn_type": "postgres",
            "host": self.host,
            "port": self.port,
            "login": self.user,
            "password": self.password,
            "schema": dbname or self.dbname,
        }

    def connection_json(self, dbname: str | None = None) -> str:
        """The same, as the JSON value of an ``AIRFLOW_CONN_<ID>`` environment variable."""
        return json.dumps(self.connection(dbname))

    def create_database(self, dbname: str) -> str:
        """A fresh, empty database owned by the login role (dropped first if it exists); its DSN."""
        import psycopg2
        from psycopg2 import sql

        conn = psycopg2.connect(self.dsn_for("postgres"))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        finally:
            conn.close()
        return self.dsn_for(dbname)

    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run([*self._run_as, str(self.bin_dir / tool), *args], cwd=self.root, check=check)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    # Bounded: pg_ctl -w gives up after START_TIMEOUT itself; nothing here may hang a test session.
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=180)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(cmd)} failed (exit {result.returncode}):\n{result.stdout[-2000:]}"
            f"\n{result.stderr[-2000:]}"
        )
    return result


def _run_as_prefix() -> tuple[list[str], int | None, int | None]:
    """How to run server commands: as ourselves, or (as root) as the ``postgres`` system user."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise PostgresUnavailable(
            f"running as root, and there is no `{SERVER_USER}` system user to run PostgreSQL as: "
            f"{INSTALL_HINT}"
        ) from exc
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", SERVER_USER, "--"], entry.pw_uid, entry.pw_gid
    # No runuser (not util-linux): setpriv does the same without a login shell.
    setpriv = shutil.which("setpriv")
    if setpriv:
        return (
            [setpriv, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--"],
            entry.pw_uid,
            entry.pw_gid,
        )
    raise PostgresUnavailable("running as root and neither runuser nor setpriv is available")


def start_postgres(dbname: str = DEFAULT_DB, attempts: int = 3) -> PostgresServer:
    """initdb a private cluster into a temp dir, start it on a free 127.0.0.1 port, create ``dbname``
    and a login role with a password. Stop it with ``server.stop()`` (or use ``postgres_server()``)."""
    started = time.monotonic()
    bin_dir = find_bin_dir()
    run_as, uid, gid = _run_as_prefix()
    # Not under pytest's tmp dir: that is 0700 root, which the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="hub-pg-"))
    socket_dir = root / "socket"
    socket_dir.mkdir()
    if uid is not None:
        for path in (root, socket_dir):
            os.chown(path, uid, gid if gid is not None else -1)
    password = secrets.token_urlsafe(18)
    server = PostgresServer(
        host="127.0.0.1",
        port=0,
        user=LOGIN_ROLE,
        password=password,
        dbname=dbname,
        bin_dir=bin_dir,
        root=root,
        socket_dir=socket_dir,
        _run_as=run_as,
    )
    try:
        # Local (socket) connections are trusted, for the bootstrap below; TCP needs the password.
        server._pg(
            "initdb", "-D", str(server.data_dir), "-U", "postgres", "-E", "UTF8", "--no-locale",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
        )  # fmt: skip
        for attempt in range(attempts):
            server.port = _free_port()
            options = (
                f"-p {server.port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c TimeZone=UTC -c max_connections=50"
            )
            result = server._pg(
                "pg_ctl", "-D", str(server.data_dir), "-l", str(server.log_path), "-o", options,
                "-w", "-t", str(START_TIMEOUT), "start", check=False,
            )  # fmt: skip
            if result.returncode == 0:
                break
            log = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
            # Another process took the port between _free_port() and the bind: try another one.
            if "Address already in use" not in log or attempt == attempts - 1:
                raise RuntimeError(
                    f"pg_ctl start failed (exit {result.returncode}): {result.stderr[-1000:]}\n"
                    f"server log tail:\n{log[-2000:]}"
                )
            server.log_path.unlink(missing_ok=True)
        _bootstrap(server)
        server.started_in = time.monotonic() - started
    except BaseException:
        server.stop()
        raise
    return server


def _bootstrap(server: PostgresServer) -> None:
    """As the superuser over the socket: the login role (with a password) and its database."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(host=str(server.socket_dir), port=server.port, user="postgres", dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(server.user), sql.Literal(server.password)
                )
            )
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(server.dbname), sql.Identifier(server.user)
                )
            )
    finally:
        conn.close()


@contextlib.contextmanager
def postgres_server(dbname: str = DEFAULT_DB) -> Iterator[PostgresServer]:
    """A running throwaway server for the ``with`` block; stopped and removed afterwards."""
    server = start_postgres(dbname)
    try:
        yield server
    finally:
        server.stop()
