"""The floor: the unavoidable cost of moving a run's data, measured on the same data right after the run.

Each part does one thing the hub must do, with nothing else (no validation, no mapping, no Airflow):
- read the same rows from the source database with the bare DB-API driver (the hub's own statements);
- replay the same HTTP requests (recorded by the sandbox during the run) with a bare ``requests`` session;
- write the same staged bytes and upload the same delivered file over the same SFTP server;
- write the same rows into the HCM table with one upsert statement (the deductions import).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from hub_sandbox import Sandbox

CHUNK = 1 << 20
logging.getLogger("paramiko").setLevel(logging.WARNING)


@dataclass
class Floor:
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.parts.values())

    def timed(self, name: str, fn: Any, *args: Any) -> Any:
        started = time.perf_counter()
        result = fn(*args)
        self.parts[name] = self.parts.get(name, 0.0) + time.perf_counter() - started
        return result


def start_recording(sandbox: Sandbox, path: Path) -> None:
    requests.post(f"{sandbox.plansource_url}/sandbox/record", json={"path": str(path)}, timeout=10)


def stop_recording(sandbox: Sandbox) -> None:
    requests.delete(f"{sandbox.plansource_url}/sandbox/record", timeout=10)


def read_rows(db_path: Path, statements: Iterable[str | tuple[str, tuple[Any, ...]]]) -> int:
    """Every row of each statement (SQL, or SQL with its parameters) through sqlite3's cursor, discarded:
    the source read's floor."""
    rows = 0
    conn = sqlite3.connect(db_path)
    try:
        for statement in statements:
            sql, params = (statement, ()) if isinstance(statement, str) else statement
            cursor = conn.execute(sql, params)
            while batch := cursor.fetchmany(5000):
                rows += len(batch)
    finally:
        conn.close()
    return rows


def replay_http(recording: Path, sandbox: Sandbox) -> int:
    """Send every recorded request again, in order, with its headers and body: the API traffic's floor."""
    base = {"plansource": sandbox.plansource_url, "ijoin": sandbox.ijoin_url}
    sent = 0
    with requests.Session() as session, recording.open(encoding="utf-8") as lines:
        for line in lines:
            entry = json.loads(line)
            url = base[entry["api"]] + entry["path"] + (f"?{entry['query']}" if entry["query"] else "")
            body = entry["body"].encode("utf-8", errors="surrogateescape") or None
            session.request(entry["method"], url, data=body, headers=entry["headers"], timeout=300)
            sent += 1
    return sent


def write_bytes(target: Path, size: int) -> None:
    """Write ``size`` bytes to a file in the staging file system: the staged files' floor."""
    block = b"x" * CHUNK
    with target.open("wb") as out:
        remaining = size
        while remaining > 0:
            out.write(block[: min(CHUNK, remaining)])
            remaining -= CHUNK
    target.unlink()


def staged_bytes(staging_root: Path) -> int:
    return sum(p.stat().st_size for p in staging_root.rglob("*") if p.is_file())


def sftp_upload(sandbox: Sandbox, local: Path, remote: str) -> None:
    """The same file over the same SFTP server, with paramiko (what the SFTP provider uses)."""
    import paramiko

    transport = paramiko.Transport((sandbox.info["host"], sandbox.sftp_port))
    try:
        transport.connect(username=sandbox.info["sftp_user"], password=sandbox.info["sftp_password"])
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        sftp.put(str(local), remote)
        sftp.remove(remote)
    finally:
        transport.close()


def snapshot_state(db_path: Path, copy_path: Path) -> None:
    """A vendor sandbox's state as it is now, into ``copy_path`` (SQLite's online backup: safe while
    its server holds the database open)."""
    copy_path.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(db_path)) as live,
        contextlib.closing(sqlite3.connect(copy_path)) as copy,
    ):
        live.backup(copy)


def restore_state(copy_path: Path, db_path: Path) -> None:
    """The state :func:`snapshot_state` took, back into the live database (untimed): replayed requests
    then meet the state the hub's met, so the vendor does the same work for the floor (a record
    created, not one found unchanged or refused as a duplicate). The copy is used up: deleted here."""
    with (
        contextlib.closing(sqlite3.connect(copy_path)) as copy,
        contextlib.closing(sqlite3.connect(db_path)) as live,
    ):
        copy.backup(live)
        # Checkpointed, as the hub's run found it: the replay does not pay for writing the restore back.
        live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy_path.unlink()


def copy_table(db_path: Path, table: str, copy_path: Path) -> None:
    """The table's rows into a file of their own (untimed), so the upsert below reads without holding
    a lock on the table it writes."""
    copy_path.unlink(missing_ok=True)
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("ATTACH DATABASE ? AS copy", (str(copy_path),))
        conn.execute(f"CREATE TABLE copy.{table} AS SELECT * FROM main.{table}")
        conn.commit()
    finally:
        conn.close()


def upsert_rows(
    db_path: Path, table: str, key_columns: tuple[str, ...], columns: tuple[str, ...], copy_path: Path
) -> int:
    """Upsert the copied rows back on their key, 5,000 rows a transaction: the floor of writing the rows
    the hub's delivery wrote (the same statement shape: INSERT ... ON CONFLICT DO UPDATE)."""
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key_columns)
    sql = (
        f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(key_columns)}) DO UPDATE SET {updates}"
    )
    reader = sqlite3.connect(copy_path)
    writer = sqlite3.connect(db_path)
    written = 0
    try:
        cursor = reader.execute(f"SELECT {names} FROM {table}")
        while batch := cursor.fetchmany(5000):
            with writer:
                writer.executemany(sql, batch)
            written += len(batch)
    finally:
        reader.close()
        writer.close()
        copy_path.unlink(missing_ok=True)
    return written
