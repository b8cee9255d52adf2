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

    def lookup(self, hcm_code: str | None, column: str = "plansource_code") -> str | None:
        if hcm_code is None:
            return None
        row = self.rows.get(hcm_code.strip())
        return row.get(column) if row else None

    def __contains__(self, hcm_code: object) -> bool:
        return isinstance(hcm_code, str) and hcm_code.strip() in self.rows


@cache
def load_table(table: str, directory: str | None = None) -> CrossReference:
    path = Path(directory) if directory else xref_dir()
    with (path / f"{table}.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = {row["hcm_code"].strip(): row for row in csv.DictReader(handle) if row.get("hcm_code")}
    return CrossReference(table=table, rows=rows)
