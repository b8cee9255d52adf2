"""``hub-sandbox``: start, stop and inspect the local vendor sandbox; run the Airflow UI wired to it."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from hub_sandbox import connections
from hub_sandbox.sandbox import DEFAULT_SIZES, Sandbox

DEFAULT_DIR = Path(".sandbox")
STANDALONE_STOP_TIMEOUT = 60.0  # standalone takes ~15 s to stop its components on Ctrl-C


def _start(args: argparse.Namespace) -> int:
    began = time.monotonic()
    sandbox = Sandbox.start(
        args.dir,
        employees=args.employees,
        seed=args.seed,
        token_ttl=args.token_ttl,
        http_port=args.http_port,
        sftp_port=args.sftp_port,
        reseed=args.reseed,
        stop_with_parent=False,
        plans=args.plans,
        participants_per_plan=args.participants_per_plan,
        ijoin_port=args.ijoin_port,
        pgp_private_key=args.pgp_private_key.read_text() if args.pgp_private_key else None,
    )
    _print_started(sandbox, time.monotonic() - began)
    return 0


def _print_started(sandbox: Sandbox, seconds: float) -> None:
    print(f"sandbox started in {seconds:.1f}s (pid {sandbox.pid})")
    print(f"  PlanSource API  {sandbox.plansource_url}  (client id {sandbox.info['client_id']})")
    print(f"  SFTP            sftp://{sandbox.info['sftp_user']}@127.0.0.1:{sandbox.sftp_port}")
    print(f"  iJoin API       {sandbox.ijoin_url}")
    print(f"  HCM database    {sandbox.hcm_db_path}  ({sandbox.info['employees']} employees)")
    print(
        f"  recordkeeper    {sandbox.recordkeeper_db_path}  ({sandbox.info['plans']} plans x "
        f"{sandbox.info['participants_per_plan']} participants)"
    )
    print(f"  connections     source {sandbox.paths.env}")
    if not sandbox.info.get("seeded_now", True):
        print("  data            kept from the last start (start over: --reseed, or make sandbox-reset)")


def _stop(args: argparse.Namespace) -> int:
    try:
        sandbox = Sandbox.attach(args.dir)
    except RuntimeError as exc:
        print(exc)
        return 1
    sandbox.stop()
    print(f"sandbox stopped (pid {sandbox.pid})")
    return 0


def _status(args: argparse.Namespace) -> int:
    try:
        sandbox = Sandbox.attach(args.dir)
    except RuntimeError:
        print("sandbox: not running")
        return 1
    if not sandbox.is_running():
        print(f"sandbox: not running (stale sandbox.json, pid {sandbox.pid})")
        return 1
    print(f"sandbox: running, pid {sandbox.pid}, API {sandbox.plansource_url}, SFTP port {sandbox.sftp_port}")
    return 0


def _env(args: argparse.Namespace) -> int:
    try:
        sandbox = Sandbox.attach(args.dir)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    sys.stdout.write(connections.export_lines(sandbox.info))
    return 0


def _airflow_conf() -> Any:
    """Airflow's configuration (of $AIRFLOW_HOME), imported without its warnings on the console."""
    # Only what we print goes to the console: not Airflow's deprecation warnings, nor the simple auth
    # manager's "looks like production" warning (standalone's api-server listens on every interface).
    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from airflow.configuration import conf
    return conf


def ui_address() -> str:
    """The Airflow UI's address: [api] base_url when it is a full URL, else localhost on [api] port."""
    conf = _airflow_conf()
    base_url = conf.get("api", "base_url", fallback="") or ""
    if base_url.startswith("http"):
        return base_url.rstrip("/")
    return f"http://localhost:{conf.getint('api', 'port', fallback=8080)}{base_url.rstrip('/')}"


def ui_login_lines() -> list[str]:
    """Where the UI answers and how to log in to it (Airflow's simple auth manager, which standalone runs).

    The auth manager generates its users' passwords once, into
    ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``, and standalone echoes them only that first
    time. This creates the file the same way (the auth manager's own init) when it is missing and returns the
    login every time, so a second ``make airflow`` does not leave the password to be dug out of a file.
    """
    conf = _airflow_conf()
    lines = [f"Airflow UI: {ui_address()}"]
    if conf.getboolean("core", "simple_auth_manager_all_admins", fallback=False):
        return [*lines, "  no login: [core] simple_auth_manager_all_admins makes every visitor an admin"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    manager = SimpleAuthManager()
    password_file = Path(manager.get_generated_password_file())
    with contextlib.redirect_stdout(io.StringIO()):  # init echoes a new password: it is returned below
        manager.init()
    passwords = json.loads(password_file.read_text() or "{}")
    lines += [
        f"  log in: user {u.username}, password {passwords.get(u.username)}" for u in manager.get_users()
    ]
    return [*lines, f"  (passwords are kept in {password_file}; delete it for new ones)"]


def _ui_login(args: argparse.Namespace) -> int:
    print("\n".join(ui_login_lines()))
    return 0


def _airflow(args: argparse.Namespace) -> int:
    """``make airflow``: the sandbox (started when none runs from ``--dir``, its data kept), the UI's address
    and login, then ``airflow standalone`` with the sandbox's connections until Ctrl-C.

    Standalone starts its components by running ``airflow`` from PATH: this interpreter's bin directory (the
    venv's) goes first on it. On Ctrl-C a terminal sends SIGINT to every process of its foreground group,
    and standalone then sends each component SIGTERM as well; a component handling both at once can hang
    (the scheduler did, in its signal handler). So standalone runs in a session of its own and gets one
    SIGINT, forwarded from here, and stops its components itself; whatever it leaves is stopped after it.
    """
    try:
        sandbox = Sandbox.attach(args.dir)
        running = sandbox.is_running()
    except RuntimeError:
        running = False
    if running:
        print(f"sandbox: running from {sandbox.directory} (pid {sandbox.pid})")
    else:
        began = time.monotonic()
        # No sizes: keep whatever the directory is seeded with (the demo's data), defaults if nothing.
        sandbox = Sandbox.start(
            args.dir,
            employees=None,
            seed=None,
            plans=None,
            participants_per_plan=None,
            stop_with_parent=False,
        )
        _print_started(sandbox, time.monotonic() - began)

    conf = _airflow_conf()
    env = {**os.environ, **sandbox.connection_env()}
    venv_bin = Path(sys.executable).parent
    env["PATH"] = os.pathsep.join([str(venv_bin), env.get("PATH", "")])
    port = conf.getint("api", "port", fallback=8080)
    env["AIRFLOW__API__PORT"] = str(port)
    base_url = conf.get("api", "base_url", fallback="") or ""
    if not conf.get("core", "execution_api_server_url", fallback=None) and not base_url.startswith("http"):
        # Tasks reach the Execution API there; Airflow would assume port 8080 whatever [api] port says.
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://localhost:{port}/execution/"
    print("\n".join(ui_login_lines()))
    print(
        "Starting airflow standalone; Ctrl-C stops it (the sandbox keeps running: make sandbox-stop)",
        flush=True,
    )

    stop_requested: float | None = None  # when the first Ctrl-C came
    standalone: subprocess.Popen[bytes] | None = None

    def forward(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = stop_requested or time.monotonic()
        if standalone is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(standalone.pid, signal.SIGINT)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # set before the start: no window
        signal.signal(signum, forward)
    standalone = subprocess.Popen(  # noqa: S603 - the venv's own airflow, fixed arguments
        [str(venv_bin / "airflow"), "standalone"],
        env=env,
        start_new_session=True,
        # A shell's background job starts with SIGINT ignored; standalone must see the one we forward.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    if stop_requested:
        os.kill(standalone.pid, signal.SIGINT)
    while True:
        try:
            code = standalone.wait(timeout=1)
            break
        except subprocess.TimeoutExpired:
            if stop_requested and time.monotonic() - stop_requested > STANDALONE_STOP_TIMEOUT:
                print("airflow standalone is not stopping: stopping its processes", flush=True)
                _stop_leftovers(standalone.pid)  # standalone included (the group is its own)
    _stop_leftovers(standalone.pid)
    return code


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _stop_leftovers(pgid: int, timeout: float = 15.0) -> None:
    """Stop what is left of standalone's process group (its session) once standalone itself has ended."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = _group_members(pgid)
        if not left:
            return
        print(
            f"airflow standalone left {len(left)} process(es) running: {signal.Signals(sig).name}", flush=True
        )
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    start = sub.add_parser("start", help="seed if needed and start the servers in the background")
    # Sizes default to None: keep what the directory is seeded with (DEFAULT_SIZES when nothing is, or
    # with --reseed). A size given that differs from the seeded one seeds again.
    kept = "default: as seeded, else {}".format
    start.add_argument("--employees", type=int, default=None, help=kept(DEFAULT_SIZES["employees"]))
    start.add_argument("--seed", type=int, default=None, help=kept(DEFAULT_SIZES["seed"]))
    start.add_argument("--http-port", type=int, default=0, help="0 = any free port")
    start.add_argument("--sftp-port", type=int, default=0, help="0 = any free port")
    start.add_argument("--ijoin-port", type=int, default=0, help="0 = any free port")
    start.add_argument("--plans", type=int, default=None, help=kept(DEFAULT_SIZES["plans"]))
    start.add_argument(
        "--participants-per-plan", type=int, default=None, help=kept(DEFAULT_SIZES["participants_per_plan"])
    )
    start.add_argument("--token-ttl", type=int, default=300, help="OAuth token lifetime, seconds")
    start.add_argument(
        "--reseed",
        action="store_true",
        help="start over: seed HCM, PlanSource, recordkeeper and iJoin anew (sizes given, else defaults)",
    )
    start.add_argument(
        "--pgp-private-key",
        type=Path,
        default=None,
        help="PlanSource's armored PGP private key (no passphrase): .csv.pgp census files are decrypted",
    )
    start.set_defaults(func=_start)
    for name, func, text in (
        ("stop", _stop, "stop the servers"),
        ("status", _status, "is it running?"),
        ("env", _env, "print the AIRFLOW_CONN_* export lines"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=func)
    for p in sub.choices.values():
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="sandbox directory (default .sandbox)")
    sub.add_parser(
        "ui-login", help="print the Airflow UI's address and login (of $AIRFLOW_HOME; as make airflow does)"
    ).set_defaults(func=_ui_login)
    ui = sub.add_parser(
        "airflow", help="make airflow: the sandbox (started if need be), then airflow standalone wired to it"
    )
    ui.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="sandbox directory (default .sandbox)")
    ui.set_defaults(func=_airflow)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
