"""A run's staged files as a person downloads them: streamed, with SSNs and birth dates masked.

Error files are masked when written; source and output files hold what the vendors exchange (an HCM
extract, a census file) and so real SSNs. Every file goes through :mod:`benefits_hub.pii` on its way
out, line by line (memory stays flat): CSV cells by column name, JSON-lines values by key, and any other
text by shape. Values are cut at 300 characters, as in error files (``pii.mask_field``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from benefits_hub.pii import mask_field, redact
from benefits_hub.staging import SafeCsvWriter

MEDIA_TYPES = {".csv": "text/csv", ".jsonl": "application/x-ndjson"}


def media_type(name: str) -> str:
    for suffix, media in MEDIA_TYPES.items():
        if name.endswith(suffix):
            return media
    return "text/plain"


def _masked_value(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _masked_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_value(key, v) for v in value]
    if isinstance(value, str):
        return mask_field(key, value)
    return value


def _masked_csv(lines: Iterable[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return
    writer.writerow(header)
    for row in reader:
        # Cells also lose any spreadsheet formula (the error files' rule; a no-op on theirs).
        writer.writerow(
            [mask_field(header[i] if i < len(header) else "", cell) for i, cell in enumerate(row)]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _masked_json_lines(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            yield redact(line, limit=len(line) + 1)
            continue
        yield json.dumps(_masked_value("", record), separators=(",", ":")) + "\n"


def masked_lines(name: str, lines: Iterable[str]) -> Iterator[str]:
    """The file ``name``'s text lines with every SSN and birth date masked."""
    if name.endswith(".csv"):
        # The header names the columns, so an SSN column is masked whatever its values look like.
        yield from _masked_csv(lines)
    elif name.endswith(".jsonl"):
        yield from _masked_json_lines(lines)
    else:
        # Unknown layout: mask anything SSN- or date-shaped.
        for line in lines:
            yield redact(line, limit=len(line) + 1)


def masked_bytes(name: str, lines: Iterable[str]) -> Iterator[bytes]:
    for text in masked_lines(name, lines):
        yield text.encode("utf-8")
