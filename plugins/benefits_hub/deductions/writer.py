"""Writes payroll deductions into the HCM: the import's domain rules at the moment of writing.

Which row wins when a key comes twice, which rows are stale or unchanged and so left alone: rules, so
they live here with the deductions, not in the HCM hook, which only hands out the connection
(:meth:`benefits_hub.hooks.hcm.HcmHook.connection`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from benefits_hub.deductions.rules import DEDUCTION_COLUMNS, KEY_COLUMNS, amounts_differ, differs, is_stale
from benefits_hub.hooks.sql import MAX_BOUND_PARAMS

_PLAIN = frozenset({str, int, float, type(None)})


@contextmanager
def deduction_writer(hcm: Any, run_id: str) -> Iterator[DeductionWriter]:
    """A writer on one connection of the HCM hook for a whole delivery; each :meth:`DeductionWriter.apply`
    is one transaction."""
    with hcm.connection() as conn:
        yield DeductionWriter(conn, hcm.placeholder, hcm.is_sqlite, run_id)


class DeductionWriter:
    """Upserts deduction rows on (person number, deduction code, effective date), a chunk per transaction.

    Rows whose values already match are left alone, so a rerun of the same window changes nothing.
    """

    def __init__(self, conn: Any, placeholder: str, is_sqlite: bool, run_id: str) -> None:
        self.conn = conn
        self.p = placeholder
        self.is_sqlite = is_sqlite
        self.run_id = run_id
        columns = [*DEDUCTION_COLUMNS, "loaded_at", "load_run_id"]  # each row's values, then the load's
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in KEY_COLUMNS)
        self.columns = columns
        self.upsert_sql = (
            f"INSERT INTO hcm_payroll_deduction ({', '.join(columns)}) "
            f"VALUES ({', '.join([placeholder] * len(columns))}) "
            f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {updates}"
        )

    def _bind(self, value: Any) -> Any:
        # sqlite3 binds neither Decimal nor date; PostgreSQL drivers bind both exactly.
        if self.is_sqlite and value is not None and not isinstance(value, str | int | float):
            if isinstance(value, datetime):  # the schema's TIMESTAMP text, as source_updated_at
                return value.isoformat(sep=" ")
            return str(value) if not hasattr(value, "isoformat") else value.isoformat()
        return value

    def existing(self, person_numbers: Sequence[str]) -> dict[tuple[str, str, str], dict[str, Any]]:
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        cursor = self.conn.cursor()
        for start in range(0, len(person_numbers), MAX_BOUND_PARAMS):
            chunk = list(person_numbers[start : start + MAX_BOUND_PARAMS])
            cursor.execute(
                f"SELECT {', '.join(DEDUCTION_COLUMNS)} FROM hcm_payroll_deduction "
                f"WHERE person_number IN ({', '.join([self.p] * len(chunk))})",
                tuple(chunk),
            )
            for values in cursor.fetchall():
                row = dict(zip(DEDUCTION_COLUMNS, values, strict=True))
                found[(row["person_number"], row["deduction_code"], str(row["effective_date"])[:10])] = row
        cursor.close()
        return found

    def plan(self, rows: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """What :meth:`apply` would do with one chunk, writing nothing (a Dry Run's preview):
        (created|updated|unchanged, row) for each row that would count."""
        return self._outcomes(rows)[0]

    def amount_changes(self, rows: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], list[str]]]:
        """The rows of one chunk that would change a loaded deduction's amounts, each with the money
        columns it changes; writes nothing (the circuit breaker's measure)."""
        existing = self.existing(sorted({r["person_number"] for r in rows}))
        found: list[tuple[dict[str, Any], list[str]]] = []
        for row in rows:
            key = (row["person_number"], row["deduction_code"], str(row["effective_date"])[:10])
            before = existing.get(key)
            if before is not None and not is_stale(row, before):
                columns = amounts_differ(row, before)
                if columns:
                    found.append((row, columns))
        return found

    def apply(self, rows: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """Upsert one chunk in one transaction; returns (created|updated|unchanged, row) for each row."""
        loaded_at = self._bind(datetime.now(UTC).replace(tzinfo=None, microsecond=0))
        outcomes, to_write = self._outcomes(rows, (loaded_at, self.run_id))
        if to_write:
            cursor = self.conn.cursor()
            cursor.executemany(self.upsert_sql, to_write)
            cursor.close()
        self.conn.commit()
        return outcomes

    def _outcomes(
        self, rows: Sequence[dict[str, Any]], load: tuple[Any, ...] = ()
    ) -> tuple[list[tuple[str, dict[str, Any]]], list[list[Any]]]:
        """Each row's outcome against what the HCM holds, and the values of the rows to write (each
        row's, then ``load``'s: the load's own columns, bound once)."""
        existing = self.existing(sorted({r["person_number"] for r in rows}))
        outcomes: list[tuple[str, dict[str, Any]]] = []
        to_write: list[list[Any]] = []
        latest: dict[tuple[str, str, str], dict[str, Any]] = {}
        for row in rows:  # a key twice in one chunk: the most recently changed record wins
            key = (row["person_number"], row["deduction_code"], str(row["effective_date"])[:10])
            if key not in latest or not is_stale(row, latest[key]):
                latest[key] = row
        for key, row in latest.items():
            before = existing.get(key)
            if before is not None and (is_stale(row, before) or not differs(row, before)):
                outcomes.append(("unchanged", row))
                continue
            outcomes.append(("created" if before is None else "updated", row))
            values = list(map(row.get, DEDUCTION_COLUMNS))
            # A staged row holds JSON's text and numbers, which every driver binds: checked per row at C
            # speed; only a row that still holds a date or Decimal (SQLite binds neither) is converted.
            if self.is_sqlite and not _PLAIN.issuperset(map(type, values)):
                values = [self._bind(value) for value in values]
            values += load
            to_write.append(values)
        return outcomes, to_write
