"""How the hub encodes the records it stages, journals and looks up: JSON through orjson.

Every staged record crosses two or three stage boundaries, so its codec is on the hot path of every
integration: orjson encodes a 32-field record in about 1 us (stdlib ``json``: 13 us) and decodes it in
about 3 us (``json``: 8 us); see docs/performance.md. The output is the JSON the hub always wrote:
values JSON has no type for (``date``, ``datetime``, ``Decimal`` from a PostgreSQL driver) become
``str(value)``, exactly as ``json.dumps(..., default=str)`` made them, so files staged before and after
read back the same.
"""

from __future__ import annotations

from typing import Any

import orjson

# datetime through default=str too ("2026-01-02 03:04:05", as json.dumps wrote it), not orjson's ISO 'T'.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_SORTED = _OPTIONS | orjson.OPT_SORT_KEYS

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (no spaces), UTF-8."""
    return orjson.dumps(value, default=str, option=_OPTIONS)


def dumps_line(value: Any) -> bytes:
    """One JSON line: :func:`dumps` plus the newline, in one call."""
    return orjson.dumps(value, default=str, option=_OPTIONS | orjson.OPT_APPEND_NEWLINE)


def dumps_canonical(value: Any) -> bytes:
    """Keys sorted: the same value always gives the same bytes (for digests)."""
    return orjson.dumps(value, default=str, option=_SORTED)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
