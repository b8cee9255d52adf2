"""A keyed lookup that lives on disk, not in memory, for the length of one task.

Joining a million HCM rows with a million vendor records must not hold either side as Python
objects. This spills one side into a temporary SQLite file (task-local scratch, deleted on close;
nothing is handed to another task through it) and answers lookups by key.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

BATCH = 5000


class DiskLookup:
    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="hub-lookup-")
        self._db = sqlite3.connect(Path(self._dir.name, "lookup.sqlite"))
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID")
        self._pending: list[tuple[str, str]] = []

    def load(self, items: Iterable[tuple[str, Any]], *, keep_existing: bool = False) -> int:
        """Insert (key, value) pairs; a later value for a key wins, unless ``keep_existing``."""
        verb = "INSERT OR IGNORE" if keep_existing else "INSERT OR REPLACE"
        count = 0
        batch: list[tuple[str, str]] = []
        for key, value in items:
            batch.append((key, json.dumps(value, separators=(",", ":"), default=str)))
            if len(batch) >= BATCH:
                count += self._flush(batch, verb)
        count += self._flush(batch, verb)
        return count

    def _flush(self, batch: list[tuple[str, str]], verb: str) -> int:
        if not batch:
            return 0
        self._db.executemany(f"{verb} INTO kv (k, v) VALUES (?, ?)", batch)
        self._db.commit()
        size = len(batch)
        batch.clear()
        return size

    def add(self, key: str, value: Any = 1) -> None:
        """Buffered single insert (a later value wins); for counting distinct keys as they stream by."""
        self._pending.append((key, json.dumps(value, separators=(",", ":"), default=str)))
        if len(self._pending) >= BATCH:
            self._flush(self._pending, "INSERT OR REPLACE")

    def get(self, key: str) -> Any | None:
        self._flush(self._pending, "INSERT OR REPLACE")
        row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def items(self) -> Iterator[tuple[str, Any]]:
        self._flush(self._pending, "INSERT OR REPLACE")
        for key, value in self._db.execute("SELECT k, v FROM kv ORDER BY k"):
            yield key, json.loads(value)

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
