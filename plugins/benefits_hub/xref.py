"""Cross-reference tables: HCM codes to vendor codes, kept as CSV data under ``include/xref``.

A code with no row is not guessed: :meth:`CrossReference.lookup` returns ``None`` and the caller
writes an error row naming the table, so a clerk knows which table to fix.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path


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

    def lookup(self, code: str | None, column: str = "plansource_code") -> str | None:
        if code is None:
            return None
        row = self.rows.get(code.strip())
        return row.get(column) if row else None

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.strip() in self.rows


@cache
def load_table(table: str, directory: str | None = None, key: str = "hcm_code") -> CrossReference:
    """The table ``include/xref/<table>.csv``, keyed by its ``key`` column (the code being mapped)."""
    path = Path(directory) if directory else xref_dir()
    with (path / f"{table}.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = {row[key].strip(): row for row in csv.DictReader(handle) if row.get(key)}
    return CrossReference(table=table, rows=rows)
