"""The delivery journal: what a run has already delivered, kept beside the run's staged files.

A ``deliver`` task may run more than once for the same run: Airflow retries it after a failure, a
person clears it, a killed worker's task is retried. Every batch the destination acknowledged (a vendor
answered, the HCM committed) is written down here, keyed by the run and by what was sent; a later
attempt of the same run replays the recorded answer instead of sending the batch again, so its counts,
output and error rows come out as if nothing had failed.

Only acknowledged batches are journaled. One whose answer never came back (a read timeout, a worker
killed mid-call) is sent again, and the destination's own idempotency keeps that harmless: upserts on
the record key, PlanSource's 409 for an employee number it already has.

Entries are small JSON objects, one per batch (``journal/<stage>/<kind>-<digest>.json`` in the run's
staging folder), so this works on object stores too (no appends, no renames). They hold sanitised
answers and record keys, never SSNs or birth dates: the payload itself is only hashed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, TypeVar

from benefits_hub import codec
from benefits_hub.models import StagedFile
from benefits_hub.staging import StagingArea

T = TypeVar("T")
# The Run Summary counter of records an earlier attempt of the same run delivered (replayed here).
ALREADY_DELIVERED = "already_delivered"


class DeliveryJournal:
    """One stage's journal in one run's staging area."""

    def __init__(self, staging: StagingArea, stage: str = "deliver") -> None:
        self.staging = staging
        self.folder = f"journal/{stage}"
        self.root = staging.path(self.folder)
        self.sent = 0
        self.replayed = 0
        # Whether the answer ``once`` just gave came from an earlier attempt: its records count as
        # "already delivered by an earlier attempt", not as this attempt's creates and updates.
        self.replaying = False

    @staticmethod
    def key(kind: str, payload: Any) -> str:
        """``kind`` plus a digest of exactly what is sent (so a changed batch is a new one)."""
        digest = hashlib.sha256(codec.dumps_canonical(payload)).hexdigest()[:40]
        return f"{_safe(kind)}-{digest}"

    @staticmethod
    def staged_key(kind: str, staged: StagedFile, number: int, size: int) -> str:
        """The key of batch ``number`` (from 0) when ``staged`` is read in order ``size`` records a batch.

        The file's digest, taken as it was written, already names what every batch holds, so no batch
        is encoded a second time to be keyed (a million-row import is 40 chunks of 25,000). A transform
        run again writes a new file (a new digest unless it holds the same records); another batch size
        makes other batches, so it is part of the key."""
        if not staged.sha256:
            raise ValueError(f"{staged.path} has no digest: key its batches with DeliveryJournal.key")
        return f"{_safe(kind)}-{staged.sha256[:40]}-{size}x{number}"

    def staged_batches(
        self, kind: str, staged: StagedFile, size: int
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """``staged``'s records ``size`` at a time, in file order, each batch with its :meth:`staged_key`."""
        batch: list[dict[str, Any]] = []
        number = 0
        for record in self.staging.read_records(staged):
            batch.append(record)
            if len(batch) >= size:
                yield batch, self.staged_key(kind, staged, number, size)
                batch, number = [], number + 1
        if batch:
            yield batch, self.staged_key(kind, staged, number, size)

    @cached_property
    def recorded(self) -> set[str]:
        """The keys of every entry on record, listed once per attempt: a first attempt (the usual case)
        reads no entry at all, and an object store is asked for one listing, not a read per batch."""
        if not self.root.exists():
            return set()
        return {path.name.removesuffix(".json") for path in self.root.iterdir()}

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The entry for ``key``, or None (never recorded, or cut off mid-write by a killed worker)."""
        if key not in self.recorded:
            return None
        try:
            entry = self.staging.read_json(f"{self.folder}/{key}.json")
        except ValueError:
            return None
        return entry if isinstance(entry, dict) and "answer" in entry else None

    def record(self, key: str, answer: Any) -> None:
        # Compact, in one write: a run of a million records writes thousands of these.
        with self.staging.binary_file(f"{self.folder}/{key}.json") as (stream, _path):
            stream.write(codec.dumps({"answer": answer}))
        self.recorded.add(key)

    def once(self, kind: str, payload: Any, send: Callable[[], T], *, key: str | None = None) -> T:
        """``send()``'s answer, sent at most once per run for this payload once acknowledged.

        ``send`` must return what is safe to keep (no PII): the answer is stored as JSON and given
        back as such on a replay. ``key``: :meth:`key` of ``kind`` and ``payload``, when the caller
        worked it out already (while the previous batch was being sent, say).
        """
        key = key or self.key(kind, payload)
        entry = self.lookup(key)
        if entry is not None:
            self.replayed += 1
            self.replaying = True
            return entry["answer"]  # type: ignore[no-any-return]
        self.replaying = False
        answer = send()
        self.record(key, answer)
        self.sent += 1
        return answer

    def tally(self, counters: dict[str, int], counter: str) -> None:
        """Count one record of the answer ``once`` just gave: as ``counter`` when this attempt wrote it,
        as ``already_delivered`` when an earlier attempt of the run did."""
        name = ALREADY_DELIVERED if self.replaying else counter
        counters[name] = counters.get(name, 0) + 1

    def log_replays(self, log: Any, what: str) -> None:
        if self.replayed:
            log.info(
                "%d %s already delivered by an earlier attempt of this run: not sent again "
                "(%d sent now)",
                self.replayed, what, self.sent,
            )  # fmt: skip


def _safe(kind: str) -> str:
    """``kind`` as a file name part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", kind)
