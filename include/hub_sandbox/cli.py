"""``hub-sandbox``: start, stop and inspect the local vendor sandbox."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hub_sandbox import connections
from hub_sandbox.sandbox import Sandbox

DEFAULT_DIR = Path(".sandbox")


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
    print(f"sandbox started in {time.monotonic() - began:.1f}s (pid {sandbox.pid})")
    print(f"  PlanSource API  {sandbox.plansource_url}  (client id {sandbox.info['client_id']})")
    print(f"  SFTP            sftp://{sandbox.info['sftp_user']}@127.0.0.1:{sandbox.sftp_port}")
    print(f"  iJoin API       {sandbox.ijoin_url}")
    print(f"  HCM database    {sandbox.hcm_db_path}  ({sandbox.info['employees']} employees)")
    print(
        f"  recordkeeper    {sandbox.recordkeeper_db_path}  ({sandbox.info['plans']} plans x "
        f"{sandbox.info['participants_per_plan']} participants)"
    )
    print(f"  connections     source {sandbox.paths.env}")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    start = sub.add_parser("start", help="seed if needed and start the servers in the background")
    start.add_argument("--employees", type=int, default=200)
    start.add_argument("--seed", type=int, default=42)
    start.add_argument("--http-port", type=int, default=0, help="0 = any free port")
    start.add_argument("--sftp-port", type=int, default=0, help="0 = any free port")
    start.add_argument("--ijoin-port", type=int, default=0, help="0 = any free port")
    start.add_argument("--plans", type=int, default=6, help="recordkeeper plans")
    start.add_argument("--participants-per-plan", type=int, default=30)
    start.add_argument("--token-ttl", type=int, default=300, help="OAuth token lifetime, seconds")
    start.add_argument(
        "--reseed", action="store_true", help="rebuild HCM, PlanSource, recordkeeper and iJoin data"
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
