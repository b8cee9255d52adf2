"""Start, stop and attach to a sandbox process; the CLI and the tests share this code path."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from hub_sandbox import connections
from hub_sandbox.generator import seed_hcm
from hub_sandbox.ijoin_api import seed_ijoin
from hub_sandbox.plansource_api import seed_plansource
from hub_sandbox.recordkeeper import seed_recordkeeper
from hub_sandbox.server import (
    CLIENT_ID,
    CLIENT_SECRET,
    IJOIN_API_KEY,
    SFTP_PASSWORD,
    SFTP_USER,
    SandboxPaths,
    check_loopback,
    stop_gpg_agent,
)
from hub_sandbox.sftp_server import prepare_root, public_host_key

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
DATA_VERSION = 3  # 2: payroll coverages, 3: recordkeeper and iJoin
# The sizes of a sandbox seeded from nothing; a start that names no size keeps what is already seeded.
DEFAULT_SIZES: dict[str, int] = {"employees": 200, "seed": 42, "plans": 6, "participants_per_plan": 30}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def seeded_sizes(directory: Path) -> dict[str, int] | None:
    """The sizes and seed the directory's data was seeded with (its seed marker), or None if it holds none."""
    paths = SandboxPaths(Path(directory).resolve())
    files = (paths.hcm_db, paths.plansource_state, paths.recordkeeper_db, paths.ijoin_state)
    if not paths.seed_marker.exists() or not all(f.exists() for f in files):
        return None
    try:
        marker = json.loads(paths.seed_marker.read_text())
    except ValueError:
        return None
    if not isinstance(marker, dict) or not all(isinstance(marker.get(k), int) for k in DEFAULT_SIZES):
        return None
    return {k: int(marker[k]) for k in DEFAULT_SIZES}


def resolve_sizes(
    directory: Path,
    reseed: bool = False,
    *,
    employees: int | None = None,
    seed: int | None = None,
    plans: int | None = None,
    participants_per_plan: int | None = None,
) -> dict[str, int]:
    """Sizes for a start: each one given wins; one not given (None) keeps what the directory is seeded with,
    so a plain restart never wipes the data (a demo's 1,000 employees, what runs changed). With ``reseed``,
    or when nothing is seeded yet, the defaults fill in."""
    given = {
        "employees": employees,
        "seed": seed,
        "plans": plans,
        "participants_per_plan": participants_per_plan,
    }
    base = DEFAULT_SIZES if reseed else (seeded_sizes(directory) or DEFAULT_SIZES)
    return {key: base[key] if value is None else value for key, value in given.items()}


def ensure_seeded(
    directory: Path,
    employees: int,
    seed: int,
    reseed: bool = False,
    plans: int = 6,
    participants_per_plan: int = 30,
) -> bool:
    """Seed HCM, PlanSource, the recordkeeper and iJoin unless the directory already holds these sizes and
    seed. True if seeded now."""
    paths = SandboxPaths(Path(directory).resolve())
    paths.root.mkdir(parents=True, exist_ok=True)
    wanted = {
        "employees": employees,
        "seed": seed,
        "plans": plans,
        "participants_per_plan": participants_per_plan,
        "data_version": DATA_VERSION,
    }
    files = (paths.hcm_db, paths.plansource_state, paths.recordkeeper_db, paths.ijoin_state)
    seeded = paths.seed_marker.exists() and all(f.exists() for f in files)
    if not reseed and seeded and json.loads(paths.seed_marker.read_text()) == wanted:
        return False
    paths.seed_marker.unlink(missing_ok=True)  # a half-seeded directory must not look seeded
    seed_hcm(paths.hcm_db, employees, seed)
    seed_plansource(paths.plansource_state, paths.hcm_db, seed)
    seed_recordkeeper(paths.recordkeeper_db, plans, participants_per_plan, seed)
    seed_ijoin(paths.ijoin_state, paths.recordkeeper_db)
    if paths.sftp_root.exists():
        shutil.rmtree(paths.sftp_root)  # old deliveries belong to the old population
    prepare_root(paths.sftp_root)
    paths.seed_marker.write_text(json.dumps(wanted))
    return True


def prepare_pgp_home(home: Path, private_key: str | None) -> None:
    """A GnuPG home holding only ``private_key`` (PlanSource's), or none at all without a key."""
    if home.exists():
        stop_gpg_agent(home)
        shutil.rmtree(home)
    if private_key is None:
        return
    home.mkdir(mode=0o700)
    # Sandbox keys are test keys: spare the agent its machine-calibrated (slow) key protection.
    (home / "gpg-agent.conf").write_text("s2k-count 65536\n")
    imported = subprocess.run(  # noqa: S603
        ["gpg", "--homedir", str(home), "--batch", "--import"],  # noqa: S607 - Debian's gnupg
        input=private_key.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if imported.returncode != 0:
        stop_gpg_agent(home)
        raise ValueError("pgp_private_key is not an armored PGP private key gpg can import")


class Sandbox:
    """A running sandbox (a detached server process) and the facts needed to talk to it."""

    def __init__(self, directory: Path, info: dict[str, Any], proc: subprocess.Popen[bytes] | None = None):
        self.directory = Path(directory).resolve()
        self.paths = SandboxPaths(self.directory)
        self.info = info
        self._proc = proc

    # -- lifecycle --------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        directory: Path,
        employees: int | None = 200,
        seed: int | None = 42,
        token_ttl: int = 300,
        http_port: int = 0,
        sftp_port: int = 0,
        reseed: bool = False,
        host: str = "127.0.0.1",
        stop_with_parent: bool = True,
        plans: int | None = 6,
        participants_per_plan: int | None = 30,
        ijoin_port: int = 0,
        pgp_private_key: str | None = None,
    ) -> Sandbox:
        """Seed if needed, start the server process in the background and wait until every port answers.

        With ``stop_with_parent`` (the default, for tests) the server exits when this process ends; the CLI
        passes False so that the sandbox outlives ``hub-sandbox start``. ``pgp_private_key`` (armored, no
        passphrase) is PlanSource's key: census files sent as ``.csv.pgp`` are decrypted with it.

        A size or seed given as None keeps what the directory is already seeded with (``DEFAULT_SIZES`` when
        nothing is, or with ``reseed``): that is how ``hub-sandbox start`` restarts without wiping the data.
        A size given that differs from the seeded one seeds again.
        """
        check_loopback(host)
        paths = SandboxPaths(Path(directory).resolve())
        paths.root.mkdir(parents=True, exist_ok=True)
        # Holds a private host key and fake PII: never let git pick it up, wherever it lives.
        (paths.root / ".gitignore").write_text("*\n")
        if paths.info.exists():
            old = json.loads(paths.info.read_text())
            if _alive(old["pid"]) and _port_open(old["host"], old["http_port"]):
                raise RuntimeError(
                    f"a sandbox is already running from {paths.root} (pid {old['pid']}); "
                    f"stop it first (hub-sandbox stop --dir {paths.root})"
                )
            paths.info.unlink()
        sizes = resolve_sizes(
            paths.root, reseed, employees=employees, seed=seed, plans=plans,
            participants_per_plan=participants_per_plan,
        )  # fmt: skip
        employees, seed = sizes["employees"], sizes["seed"]
        plans, participants_per_plan = sizes["plans"], sizes["participants_per_plan"]
        seeded_now = ensure_seeded(paths.root, employees, seed, reseed, plans, participants_per_plan)
        prepare_root(paths.sftp_root)
        prepare_pgp_home(paths.pgp_home, pgp_private_key)
        host_key = public_host_key(paths.root)
        paths.ready.unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "hub_sandbox.server", "--dir", str(paths.root), "--host", host,
            "--http-port", str(http_port), "--sftp-port", str(sftp_port), "--token-ttl", str(token_ttl),
            "--ijoin-port", str(ijoin_port),
        ]  # fmt: skip
        if stop_with_parent:
            cmd += ["--parent-pid", str(os.getpid())]
        with paths.log.open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not paths.ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                tail = paths.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"sandbox server did not start (exit {proc.returncode}); log tail:\n{tail}"
                )
            time.sleep(0.05)
        ready = json.loads(paths.ready.read_text())
        for port in (ready["http_port"], ready["sftp_port"], ready["ijoin_port"]):
            if not _port_open(host, port):
                proc.terminate()
                raise RuntimeError(f"sandbox port {port} does not answer")
        info = {
            "pid": proc.pid,
            "host": host,
            "http_port": ready["http_port"],
            "sftp_port": ready["sftp_port"],
            "ijoin_port": ready["ijoin_port"],
            "plansource_url": f"http://{host}:{ready['http_port']}",
            "ijoin_url": f"http://{host}:{ready['ijoin_port']}",
            "directory": str(paths.root),
            "hcm_db_path": str(paths.hcm_db),
            "plansource_state_path": str(paths.plansource_state),
            "recordkeeper_db_path": str(paths.recordkeeper_db),
            "ijoin_state_path": str(paths.ijoin_state),
            "sftp_root": str(paths.sftp_root),
            "log_path": str(paths.log),
            "employees": employees,
            "seed": seed,
            "plans": plans,
            "participants_per_plan": participants_per_plan,
            "seeded_now": seeded_now,  # False: the data of an earlier start was kept
            "token_ttl": token_ttl,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "sftp_user": SFTP_USER,
            "sftp_password": SFTP_PASSWORD,
            "ijoin_api_key": IJOIN_API_KEY,
            "host_key": host_key,
        }
        paths.info.write_text(json.dumps(info, indent=2))
        paths.env.write_text(connections.export_lines(info))
        return cls(paths.root, info, proc)

    @classmethod
    def attach(cls, directory: Path) -> Sandbox:
        """The sandbox running from ``directory`` (reads its sandbox.json)."""
        paths = SandboxPaths(Path(directory).resolve())
        if not paths.info.exists():
            raise RuntimeError(f"no sandbox.json in {paths.root}: start the sandbox first")
        return cls(paths.root, json.loads(paths.info.read_text()))

    def is_running(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            return False
        return _alive(self.pid) and _port_open(self.info["host"], self.info["http_port"])

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait, then SIGKILL."""
        pid = self.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(5.0)
        if self.paths.pgp_home.is_dir():  # the server stops its gpg-agent, unless it was killed
            stop_gpg_agent(self.paths.pgp_home)
        self.paths.info.unlink(missing_ok=True)
        self.paths.ready.unlink(missing_ok=True)

    def _wait_gone(self, timeout: float) -> bool:
        if self._proc is not None:  # our child: reap it, or it lingers as a zombie
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while _alive(self.pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- facts ------------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return int(self.info["pid"])

    @property
    def plansource_url(self) -> str:
        return str(self.info["plansource_url"])

    @property
    def ijoin_url(self) -> str:
        return str(self.info["ijoin_url"])

    @property
    def ijoin_port(self) -> int:
        return int(self.info["ijoin_port"])

    @property
    def http_port(self) -> int:
        return int(self.info["http_port"])

    @property
    def sftp_port(self) -> int:
        return int(self.info["sftp_port"])

    @property
    def host_key(self) -> str:
        return str(self.info["host_key"])

    @property
    def hcm_db_path(self) -> Path:
        return Path(self.info["hcm_db_path"])

    @property
    def plansource_state_path(self) -> Path:
        return Path(self.info["plansource_state_path"])

    @property
    def recordkeeper_db_path(self) -> Path:
        return Path(self.info["recordkeeper_db_path"])

    @property
    def ijoin_state_path(self) -> Path:
        return Path(self.info["ijoin_state_path"])

    @property
    def sftp_root(self) -> Path:
        return Path(self.info["sftp_root"])

    def connections(self) -> dict[str, dict[str, Any]]:
        """Connection id -> Airflow connection dict."""
        return connections.connections(self.info)

    def connection_env(self) -> dict[str, str]:
        """AIRFLOW_CONN_* name -> JSON value, ready for os.environ / monkeypatch.setenv."""
        return connections.connection_env(self.info)
