"""A SQL source on whichever SQL provider hook its connection names (SQLite, PostgreSQL...).

The connection's type picks the provider hook (``SqliteHook``, ``PostgresHook``...); the SQL the hub
writes is portable between them. Rows are streamed with a server-side cursor where the driver has one,
``fetchmany`` batches otherwise: memory stays flat whatever the table size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from itertools import repeat
from typing import Any

from airflow.sdk import BaseHook

FETCH_SIZE = 5000
MAX_BOUND_PARAMS = 500  # SQLite's default limit is 999 bound parameters per statement


class SqlSourceHook(BaseHook):
    """Base of the HCM and recordkeeper hooks."""

    conn_type = "generic"

    def __init__(self, conn_id: str) -> None:
        super().__init__()
        self.conn_id = conn_id

    @cached_property
    def db(self) -> Any:
        """The SQL provider hook (a ``DbApiHook``) for the connection's type."""
        return self.get_connection(self.conn_id).get_hook()

    @cached_property
    def dialect(self) -> str:
        """The connection type: ``sqlite``, ``postgres``..."""
        return self.get_connection(self.conn_id).conn_type

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def byte_order(self) -> str:
        """``ORDER BY key{byte_order}``: sorted by bytes, as Python compares the keys, so the rows can be
        merge-joined with a vendor's list (SQLite's default collation already is; PostgreSQL's follows
        the locale, where "E-10" and "E10" sort the other way)."""
        return ' COLLATE "C"' if self.dialect == "postgres" else ""

    @property
    def placeholder(self) -> str:
        return self.db.placeholder

    def get_conn(self) -> Any:
        return self.db.get_conn()

    def _ts(self, value: datetime) -> Any:
        # SQLite keeps timestamps as 'YYYY-MM-DD HH:MM:SS' text (UTC); compare like with like.
        naive = value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S") if self.is_sqlite else naive

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """One DB-API connection for a task's work: its reads (several streams at once) or its writes."""
        conn = self.db.get_conn()
        try:
            yield conn
        finally:
            conn.close()

    def _stream(
        self, sql: str, params: Sequence[Any], conn: Any = None, name: str = "hub_stream"
    ) -> Iterator[dict[str, Any]]:
        """Rows as dicts, a batch in memory at a time; on ``conn`` when given (several streams may be open
        on it at once, each with its own ``name``), else on a connection of its own."""
        if conn is not None:
            return self._fetch(conn, sql, params, name)  # no generator between the rows and their reader
        return self._own_stream(sql, params, name)

    def _own_stream(self, sql: str, params: Sequence[Any], name: str) -> Iterator[dict[str, Any]]:
        with self.connection() as own:
            yield from self._fetch(own, sql, params, name)

    def _fetch(self, conn: Any, sql: str, params: Sequence[Any], name: str) -> Iterator[dict[str, Any]]:
        cursor = conn.cursor(name=name) if self.dialect == "postgres" else conn.cursor()
        if self.dialect == "postgres":
            cursor.itersize = FETCH_SIZE
        cursor.execute(sql, tuple(params))
        columns: list[str] | None = None
        while True:
            batch = cursor.fetchmany(FETCH_SIZE)
            if not batch:
                break
            if columns is None:
                columns = [d[0] for d in cursor.description]
            yield from map(dict, map(zip, repeat(columns), batch))  # each row a dict, at C speed
        cursor.close()

    def database_time(self) -> datetime:
        """The database's own clock (UTC): the clock its ``updated_at`` stamps come from, so a window
        bounded by it cannot miss a change because the worker's clock runs ahead."""
        value = next(self._stream("SELECT CURRENT_TIMESTAMP AS now", []))["now"]
        if not isinstance(value, datetime):  # SQLite: 'YYYY-MM-DD HH:MM:SS' text, UTC
            value = datetime.fromisoformat(str(value))
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)

    def in_chunks(
        self, sql_before_in: str, values: Sequence[Any], sql_after_in: str = "", conn: Any = None
    ) -> Iterator[dict[str, Any]]:
        """``sql_before_in (?, ?, ...) sql_after_in`` over ``values``, a bounded number at a time; on
        ``conn`` when given (a task that asks again and again keeps one), else on a connection of its own."""
        for start in range(0, len(values), MAX_BOUND_PARAMS):
            chunk = list(values[start : start + MAX_BOUND_PARAMS])
            marks = ", ".join([self.placeholder] * len(chunk))
            yield from self._stream(f"{sql_before_in} ({marks}) {sql_after_in}", chunk, conn)

    def test_connection(self) -> tuple[bool, str]:
        try:
            next(self._stream("SELECT 1 AS ok", []))
        except Exception as exc:
            return False, str(exc)
        return True, "Connection successfully tested"
