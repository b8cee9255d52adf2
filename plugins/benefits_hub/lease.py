"""One writer per integration and destination: the deliver lease.

Why: a task process orphaned by a killed supervisor or scheduler keeps running until Airflow's heartbeat
timeout (``[scheduler] task_instance_heartbeat_timeout``, 300 s by default) fails it, and the retry then
starts while the orphan may still be writing. Within one run both attempts send the same staged data
(the journal replays what was acknowledged), but an orphan that outlives its run could write an older
run's values over a newer run's. So a ``deliver`` holds a lease for its integration and destination
while it writes, and renews it every ``ttl / 3`` seconds; another deliver waits for it to be released,
or to go stale (not renewed for ``ttl`` seconds, or its process on this machine is gone: its holder
died), and refuses after ``wait`` seconds.

The lease is a small JSON file in the hub's state folder of the staging area. It is taken with an
exclusive create, which is atomic on a local or shared POSIX file system (``file://`` staging). On an
object store a create is not exclusive, so the lease is written and read back: two deliverers starting
within the same moment could both win there (see docs/production.md: keep the heartbeat timeout rule).

Deployment rule: keep ``ttl`` (``[benefits_hub] deliver_lease_seconds``, default 120) well below
``[scheduler] task_instance_heartbeat_timeout``, so a dead holder's lease is stale before its retry
comes, and a live orphan's renewals keep the retry waiting.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

DEFAULT_TTL_SECONDS = 120.0


class LeaseRefused(Exception):
    """Another attempt still holds the lease after the wait; the message names it."""


def lease_ttl() -> float:
    from airflow.configuration import conf

    return max(conf.getfloat("benefits_hub", "deliver_lease_seconds", fallback=DEFAULT_TTL_SECONDS), 3.0)


class DeliverLease:
    def __init__(self, path: Any, holder: str, *, ttl: float, wait: float, log: Any = None) -> None:
        self.path = path  # an ObjectStoragePath (or pathlib.Path) of the lease file
        self.holder = holder
        self.ttl = ttl
        self.wait = wait
        self.log = log
        self.lost = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- the file -----------------------------------------------------------------------------------
    def _local(self) -> str | None:
        protocol = getattr(self.path, "protocol", "file")
        return str(self.path).removeprefix("file://") if protocol in ("file", "local", "") else None

    def _entry(self) -> bytes:
        entry = {
            "holder": self.holder,
            "renewed_at": time.time(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        return json.dumps(entry).encode()

    def _read(self) -> dict[str, Any] | None:
        try:
            with self.path.open("rb") as handle:
                entry = json.loads(handle.read() or b"null")
        except (FileNotFoundError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    def _write(self, exclusive: bool) -> bool:
        local = self._local()
        if local is not None:
            os.makedirs(os.path.dirname(local), exist_ok=True)
            if exclusive:
                try:
                    fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "wb") as handle:
                    handle.write(self._entry())
                return True
            temporary = f"{local}.{os.getpid()}.tmp"
            with open(temporary, "wb") as handle:
                handle.write(self._entry())
            os.replace(temporary, local)
            return True
        if exclusive and self._read() is not None:
            return False
        with self.path.open("wb") as handle:
            handle.write(self._entry())
        entry = self._read()
        return entry is not None and entry.get("holder") == self.holder

    # -- taking, keeping, giving back -------------------------------------------------------------
    def acquire(self) -> None:
        started = time.monotonic()
        said = False
        while True:
            if self._write(exclusive=True):
                break
            entry = self._read()
            if entry is None:
                continue  # released (or half-written) just now: try again at once
            age = time.time() - float(entry.get("renewed_at") or 0)
            if entry.get("holder") == self.holder or age > self.ttl or _holder_is_gone(entry):
                # Ours from before, or its holder stopped renewing it (died): take it over.
                with contextlib.suppress(FileNotFoundError):
                    self._write(exclusive=False)
                if (self._read() or {}).get("holder") == self.holder:
                    break
                continue
            waited = time.monotonic() - started
            if waited >= self.wait:
                since = datetime.fromtimestamp(float(entry.get("renewed_at") or 0), UTC).strftime("%H:%M:%S")
                raise LeaseRefused(
                    f"Another attempt is still delivering ({entry.get('holder')}, last seen at {since} UTC): "
                    f"waited {waited:.0f} s. Two attempts writing at once could put older values over newer "
                    "ones, so this attempt wrote nothing; it is retried; or clear it later."
                )
            if not said and self.log is not None:
                self.log.warning("Waiting for another attempt to finish delivering: %s", entry.get("holder"))
                said = True
            time.sleep(min(1.0, self.ttl / 10))
        self._renewer = threading.Thread(target=self._renew, name="deliver-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            entry = self._read()
            if entry is not None and entry.get("holder") != self.holder:
                self.lost = True  # someone took it over: only if we stopped renewing for a whole ttl
                return
            with contextlib.suppress(OSError):
                self._write(exclusive=False)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(5)
        if (self._read() or {}).get("holder") == self.holder:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    @contextlib.contextmanager
    def held(self) -> Iterator[DeliverLease]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()


def _holder_is_gone(entry: dict[str, Any]) -> bool:
    """A holder on this machine whose process no longer exists (a killed worker): no need to wait for
    its lease to go stale. On another machine only staleness tells."""
    if entry.get("host") != socket.gethostname() or not isinstance(entry.get("pid"), int):
        return False
    if entry["pid"] == os.getpid():
        return False  # another thread of this process (tests); it renews while it lives
    try:
        os.kill(entry["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def holder_name(run_id: str, try_number: int | None) -> str:
    return f"run {run_id}, try {try_number or 1}, process {os.getpid()} on {socket.gethostname()}"
