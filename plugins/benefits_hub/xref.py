"""Cross-reference tables: HCM codes to vendor codes, kept as CSV data under ``include/xref``.

A code with no row is not guessed: :meth:`CrossReference.lookup` returns ``None`` and the caller
writes an error row naming the table, so a clerk knows which table to fix.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from benefits_hub.integration import StageRefused


def xref_dir() -> Path:
    """``include/xref`` of this checkout, or ``BENEFITS_HUB_XREF_DIR`` for a tenant's own tables."""
    configured = os.environ.get("BENEFITS_HUB_XREF_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "include" / "xref"


@dataclass(frozen=True)
class CrossReference:
    table: str  # file stem, e.g. "pay_group": what an error row names
    rows: dict[str, dict[str, str]]

    def lookup(self, code: object, column: str = "plansource_code") -> str | None:
        if code is None:
            return None
        # A code column without a text type hands over 12 where the table holds "12".
        row = self.rows.get((code if type(code) is str else str(code)).strip())
        return row.get(column) if row else None

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.strip() in self.rows


class CrossReferenceError(StageRefused):
    """A table a person edited cannot be used as it is; the message says which file, line and why.

    A run refuses (no retries: a retry reads the same file) instead of mapping through a half-read table,
    which would turn one bad line into an error row for every employee.
    """


# The columns each table must fill on every row; the rest (a description, say) are free.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "deduction_code": ("plansource_code", "hcm_code"),
    "employee_status": ("hcm_code", "plansource_code", "export"),
    "termination_reason": ("hcm_code", "plansource_code", "voluntary"),
}


def _header_name(name: str) -> str:
    # "HCM Code" and " hcm_code" as a spreadsheet may save them: the same column.
    return "_".join(name.strip().lower().split())


@cache
def load_table(table: str, directory: str | None = None, key: str = "hcm_code") -> CrossReference:
    """The table ``include/xref/<table>.csv``, keyed by its ``key`` column (the code being mapped).

    UTF-8 with or without a BOM; header names are compared without case or surrounding spaces; values
    are stripped. Anything else a clerk's edit can leave behind is a :class:`CrossReferenceError`.
    """
    path = (Path(directory) if directory else xref_dir()) / f"{table}.csv"
    where = f"The cross-reference table {table}.csv"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CrossReferenceError(f"{where} is missing from {path.parent}.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CrossReferenceError(
            f"{where} is not saved as UTF-8 (byte {exc.start + 1} cannot be read). In the spreadsheet, "
            "save it as 'CSV UTF-8 (comma delimited)'."
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [_header_name(name) for name in next(reader, [])]
    required = REQUIRED_COLUMNS.get(table, (key, "plansource_code"))
    missing = [column for column in required if column not in header]
    if missing:
        found = ", ".join(name for name in header if name) or "no header line"
        raise CrossReferenceError(f"{where} has no '{missing[0]}' column (its columns: {found}).")
    rows: dict[str, dict[str, str]] = {}
    first_line: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        values = [value.strip() for value in values]
        if not any(values):
            continue  # a blank line, as spreadsheets leave at the end
        if len(values) > len(header) and any(values[len(header) :]):
            raise CrossReferenceError(
                f"{where}, line {line}: {len(values)} values where the header has {len(header)}. "
                "A value that holds a comma must be in double quotes."
            )
        row = dict(zip(header, values + [""] * (len(header) - len(values)), strict=False))
        empty = [column for column in required if not row[column]]
        if empty:
            raise CrossReferenceError(
                f"{where}, line {line}: no {empty[0]} (the line is incomplete, or the file was cut off)."
            )
        code = row[key]
        if code in rows:
            if any(rows[code][column] != row[column] for column in required):
                raise CrossReferenceError(
                    f"{where} maps {key} '{code}' twice, differently (lines {first_line[code]} and {line}). "
                    "Keep one of them."
                )
            continue
        rows[code] = row
        first_line[code] = line
    if not rows:
        raise CrossReferenceError(f"{where} has no rows.")
    return CrossReference(table=table, rows=rows)
