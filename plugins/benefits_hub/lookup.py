"""Keyed lookups for joins of a million records with a million, without holding either side in memory.

:class:`OrderedLookup` is the usual one: both sides ordered by key, it walks them together (a merge
join). :class:`DiskLookup` is for a side that is not ordered (and the merge's fallback): it spills the
side into a temporary SQLite file (task-local scratch, deleted on close; nothing is handed to another
task through it) and answers lookups by key.
"""

from __future__ import annotations

import heapq
import itertools
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benefits_hub import codec

BATCH = 5000
_PRESENT = codec.dumps(1)  # the value of a key added alone


class DiskLookup:
    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="hub-lookup-")
        self._db = sqlite3.connect(Path(self._dir.name, "lookup.sqlite"))
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        self._pending: list[tuple[str, bytes]] = []

    def load(self, items: Iterable[tuple[str, Any]], *, keep_existing: bool = False) -> int:
        """Insert (key, value) pairs; a later value for a key wins, unless ``keep_existing``."""
        verb = "INSERT OR IGNORE" if keep_existing else "INSERT OR REPLACE"
        count = 0
        batch: list[tuple[str, bytes]] = []
        for key, value in items:
            batch.append((key, codec.dumps(value)))
            if len(batch) >= BATCH:
                count += self._flush(batch, verb)
        count += self._flush(batch, verb)
        return count

    def _flush(self, batch: list[tuple[str, bytes]], verb: str) -> int:
        if not batch:
            return 0
        self._db.executemany(f"{verb} INTO kv (k, v) VALUES (?, ?)", batch)
        self._db.commit()
        size = len(batch)
        batch.clear()
        return size

    def add(self, key: str, value: Any = 1) -> None:
        """Buffered single insert (a later value wins); for counting distinct keys as they stream by."""
        self._pending.append((key, codec.dumps(value)))
        if len(self._pending) >= BATCH:
            self._flush(self._pending, "INSERT OR REPLACE")

    def add_keys(self, keys: Iterable[str]) -> None:
        """Buffered inserts of keys alone, as ``add(key)`` each (a key already there stays)."""
        self._pending.extend(zip(keys, itertools.repeat(_PRESENT)))
        if len(self._pending) >= BATCH:
            self._flush(self._pending, "INSERT OR REPLACE")

    def get(self, key: str) -> Any | None:
        self._flush(self._pending, "INSERT OR REPLACE")
        row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return codec.loads(row[0]) if row else None

    def items(self) -> Iterator[tuple[str, Any]]:
        self._flush(self._pending, "INSERT OR REPLACE")
        for key, value in self._db.execute("SELECT k, v FROM kv ORDER BY k"):
            yield key, codec.loads(value)

    def __len__(self) -> int:
        self._flush(self._pending, "INSERT OR REPLACE")
        return int(self._db.execute("SELECT COUNT(*) FROM kv").fetchone()[0])

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()

    def __enter__(self) -> DiskLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OutOfOrder(ValueError):
    """A stream said to be ordered by key was not: a merge over it cannot be trusted, so it stops."""


def ascending(items: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """``items`` as they come, checked to be in ascending key order (equal keys may repeat)."""
    previous: str | None = None
    for item in items:
        if previous is not None and item[0] < previous:
            raise OutOfOrder(f"key order broken after {len(previous)}-character key")
        previous = item[0]
        yield item


def full_outer_join(
    left: Iterable[tuple[str, Any]],
    right: Iterable[tuple[str, Any]],
    sides: tuple[str, str] = ("HCM", "PlanSource"),
) -> Iterator[tuple[str, Any | None, Any | None]]:
    """Two key-ordered streams walked together: each key once, with its value on each side (or None).
    A side whose keys do not ascend raises :class:`OutOfOrder`: the comparison would be wrong."""
    lefts, rights = _strictly_ascending(left, sides[0]), _strictly_ascending(right, sides[1])
    lk, lv = next(lefts, (None, None))
    rk, rv = next(rights, (None, None))
    while lk is not None or rk is not None:
        if rk is None or (lk is not None and lk < rk):
            yield lk, lv, None  # type: ignore[misc]
            lk, lv = next(lefts, (None, None))
        elif lk is None or rk < lk:
            yield rk, None, rv
            rk, rv = next(rights, (None, None))
        else:
            yield lk, lv, rv
            lk, lv = next(lefts, (None, None))
            rk, rv = next(rights, (None, None))


def _strictly_ascending(items: Iterable[tuple[str, Any]], side: str) -> Iterator[tuple[str, Any]]:
    previous: str | None = None
    for key, value in items:
        if previous is not None and key <= previous:
            raise OutOfOrder(f"{side} records are not in key (byte) order at {key!r}")
        previous = key
        yield key, value


def merge_latest(streams: Sequence[Iterable[tuple[str, Any]]]) -> Iterator[tuple[str, Any]]:
    """One key-ordered stream from key-ordered ``streams``: each key once, with the value of the last
    stream (and, within a stream, the last item) that has it. Raises :class:`OutOfOrder` if an input is
    not ordered. Memory: one item per stream."""
    tagged = [_tagged(stream, index) for index, stream in enumerate(streams)]
    last: tuple[str, Any] | None = None
    for (key, _index), value in heapq.merge(*tagged, key=lambda item: item[0]):
        if last is not None and key != last[0]:
            yield last
        last = (key, value)
    if last is not None:
        yield last


def _tagged(stream: Iterable[tuple[str, Any]], index: int) -> Iterator[tuple[tuple[str, int], Any]]:
    for key, value in ascending(stream):
        yield (key, index), value


class OrderedLookup:
    """``get(key)`` answered by walking a key-ordered stream once: a merge join, with no index to build
    and nothing held but the stream's current item.

    ``stream()`` must ascend by key (a staged file whose order was checked as it was written, a file the
    hub wrote in order); if it is found not to, :class:`OutOfOrder` is raised, since an earlier answer
    may have been wrong. The keys asked need not ascend: one asked out of order (an HCM that sorts
    differently) is answered from a :class:`DiskLookup` loaded from a fresh ``stream()``: slower, never
    wrong.
    """

    def __init__(self, stream: Callable[[], Iterable[tuple[str, Any]]]) -> None:
        self._stream = stream
        self._items: Iterator[tuple[str, Any]] = ascending(stream())
        self._head: tuple[str, Any] | None = None
        self._asked: str | None = None
        self._answer: Any = None
        self._fallback: DiskLookup | None = None
        self._started = False

    @property
    def fell_back(self) -> bool:
        return self._fallback is not None

    def _fall_back(self) -> DiskLookup:
        if self._fallback is None:
            self._fallback = DiskLookup()
            self._fallback.load(self._stream())
        return self._fallback

    def get(self, key: str) -> Any | None:
        if self._fallback is not None:
            return self._fallback.get(key)
        if self._asked is not None and key <= self._asked:
            return self._answer if key == self._asked else self._fall_back().get(key)
        if not self._started:
            self._head, self._started = next(self._items, None), True
        answer = None
        while self._head is not None and self._head[0] <= key:
            if self._head[0] == key:
                answer = self._head[1]  # a key given twice: the later value wins, as in DiskLookup
            self._head = next(self._items, None)
        self._asked, self._answer = key, answer
        return answer

    def close(self) -> None:
        if self._fallback is not None:
            self._fallback.close()

    def __enter__(self) -> OrderedLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def join_lookup(stream: Callable[[], Iterable[tuple[str, Any]]], *, ordered: bool) -> Any:
    """A lookup over ``stream()``: a merge (:class:`OrderedLookup`) when the stream is known to ascend by
    key, else a :class:`DiskLookup` loaded from it. Either answers ``get(key)`` and closes as a context."""
    if ordered:
        return OrderedLookup(stream)
    index = DiskLookup()
    index.load(stream())
    return index
