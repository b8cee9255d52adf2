"""The sandbox's HCM on PostgreSQL: copy a seeded SQLite HCM into a PostgreSQL database, and edit it.

The seeded population is made once, in SQLite (``generator.seed_hcm``); ``copy_hcm_to_postgres`` then
recreates include/sql/hcm_schema.sql (unchanged) in PostgreSQL and streams every table across in
chunks, typed by the schema's declared column types (DATE, TIMESTAMP, NUMERIC). ``touch_employees_pg``
is ``generator.touch_employees`` for a PostgreSQL HCM (same fields, same semantics).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hub_sandbox.generator import SCHEMA_PATH, touch_statements

CHUNK = 5000
PAGE_SIZE = 1000


def _as_date(value: Any) -> Any:
    return date.fromisoformat(str(value)[:10]) if isinstance(value, str) and value else value


def _as_timestamp(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    parsed = datetime.fromisoformat(value)
    # Stored as UTC; TIMESTAMP (without time zone) columns hold naive UTC.
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _as_numeric(value: Any) -> Any:
    return Decimal(str(value)) if isinstance(value, int | float | str) and value != "" else value


def _converter(declared_type: str) -> Callable[[Any], Any] | None:
    kind = declared_type.upper()
    if kind.startswith("TIMESTAMP") or kind == "DATETIME":
        return _as_timestamp
    if kind == "DATE":
        return _as_date
    if kind.startswith(("NUMERIC", "DECIMAL")):
        return _as_numeric
    return None


def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    """User tables in creation order (parents before the tables that reference them)."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
    )
    return [row[0] for row in rows]


def copy_hcm_to_postgres(sqlite_path: Path, dsn: str, schema_sql: Path = SCHEMA_PATH) -> dict[str, int]:
    """Replace the HCM tables in the PostgreSQL database ``dsn`` with those of the SQLite HCM.

    Drops the tables (idempotent), runs ``schema_sql`` as is, copies every table's rows in chunks, and
    ANALYZEs; all in one transaction. Returns table -> rows copied.
    """
    import psycopg2
    from psycopg2 import sql
    from psycopg2.extras import execute_values

    source = sqlite3.connect(f"file:{Path(sqlite_path)}?mode=ro", uri=True)
    target = psycopg2.connect(dsn)
    copied: dict[str, int] = {}
    try:
        tables = _sqlite_tables(source)
        with target, target.cursor() as cur:
            if tables:
                cur.execute(
                    sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
                        sql.SQL(", ").join(sql.Identifier(t) for t in reversed(tables))
                    )
                )
            cur.execute(Path(schema_sql).read_text())
            for table in tables:
                info = source.execute(f'PRAGMA table_info("{table}")').fetchall()
                columns = [row[1] for row in info]
                converters = [_converter(row[2] or "") for row in info]
                insert = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(
                    sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
                )
                select = 'SELECT {} FROM "{}"'.format(", ".join(f'"{c}"' for c in columns), table)
                rows = source.execute(select)
                copied[table] = 0
                while batch := rows.fetchmany(CHUNK):
                    typed = [
                        tuple(conv(v) if conv else v for conv, v in zip(converters, row, strict=True))
                        for row in batch
                    ]
                    execute_values(cur, insert.as_string(cur), typed, page_size=PAGE_SIZE)
                    copied[table] += len(typed)
            for table in tables:
                cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    finally:
        target.close()
        source.close()
    return copied


def touch_employees_pg(
    dsn: str,
    person_numbers: Iterable[str],
    when: datetime,
    changes: dict[str, Any] | None = None,
) -> int:
    """``generator.touch_employees`` for a PostgreSQL HCM: apply ``changes`` and set updated_at = ``when``.

    Person fields go to hcm_person; employment fields to the primary hcm_employment row, whose
    updated_at moves too. With no changes only hcm_person.updated_at moves. Returns people touched.
    """
    import psycopg2

    p_sql, p_values, e_sql, e_values = touch_statements(when, changes, "%s")
    # Whole seconds, naive UTC: as the SQLite HCM keeps them.
    stamp = when.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    touched = 0
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            for number in person_numbers:
                cur.execute(p_sql, [*p_values, stamp, number])
                touched += cur.rowcount
                if e_values:
                    cur.execute(e_sql, [*e_values, stamp, number])
    finally:
        conn.close()
    return touched
