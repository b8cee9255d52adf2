"""How the hub encodes the records it stages, journals and looks up: JSON, written by orjson and read
by msgspec.

Every staged record crosses two or three stage boundaries, so its codec is on the hot path of every
integration: orjson encodes a 32-field record in about 1 us (stdlib ``json``: 13 us) and decodes it in
about 3 us (``json``: 8 us; msgspec the same, and exact for integers past 64 bits); see
docs/performance.md. The output is the JSON the hub always wrote:
values JSON has no type for (``date``, ``datetime``, ``Decimal`` from a PostgreSQL driver) become
``str(value)``, exactly as ``json.dumps(..., default=str)`` made them, so files staged before and after
read back the same. orjson writes an infinite float as ``null``; a record holding one (SQLite's NUMERIC
turns a typed "1e400" into infinity) is written by stdlib json instead, so the rules still see it; so is
one orjson refuses (an integer past 64 bits, a lone surrogate). Nothing is lost on the way.
"""

from __future__ import annotations

import functools
import json
import math
from operator import countOf
from typing import Any, NamedTuple

import msgspec
import orjson

# datetime through default=str too ("2026-01-02 03:04:05", as json.dumps wrote it), not orjson's ISO 'T'.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_SORTED = _OPTIONS | orjson.OPT_SORT_KEYS

_DECODER = msgspec.json.Decoder()


_NESTED_OR_FLOAT = frozenset({float, dict, list, tuple})


def _non_finite(value: Any) -> bool:
    """Whether ``value`` holds an infinite or NaN float anywhere (orjson would write it as null)."""
    kind = type(value)
    if kind is float:
        return not math.isfinite(value)
    if kind is dict:
        kinds = set(map(type, value.values()))
        # A flat record of text, numbers and blanks (most) is told at C speed, without a call per value.
        if kinds.isdisjoint(_NESTED_OR_FLOAT):
            return False
        return any(map(_non_finite, value.values()))
    if kind is list or kind is tuple:
        return any(map(_non_finite, value))
    return False


def _nones(value: Any) -> int:
    """How many ``None`` ``value`` holds, nested ones included: the nulls orjson writes for it when every
    float is finite. Walked depth first, counting each container's Nones at C speed: a staged participant
    (its balances, allocations and payroll nested in it) is written in 10.6 us a line where counting a
    level of nesting at a time made it 17.6, and a 500-record request body is counted in 3.9 ms against
    4.5 (docs/performance.md). orjson refuses more than 255 levels, so the recursion stays shallow. A
    subclass of dict or list is not looked into: a count that falls short only sends the record to the
    exact check."""
    kind = type(value)
    if kind is dict:
        values: Any = value.values()
    elif kind is list or kind is tuple:
        values = value
    else:
        return 1 if value is None else 0
    found = countOf(values, None)
    for item in values:
        kind = type(item)
        if kind is dict or kind is list or kind is tuple:
            found += _nones(item)
    return found


def _faithful(value: Any, encoded: bytes, sort_keys: bool = False, *, newline: bool = False) -> bytes:
    """``encoded``, unless orjson turned an infinite float into null: SQLite's NUMERIC makes a typed
    "1e400" infinity, and the rules must see it to refuse it ("too large to be an amount"), not a blank.
    Such a record (rare) is written by stdlib json, as ``Infinity``, which :func:`loads` reads back."""
    # Every null is a None, an infinite or NaN float, or the word inside some text: as many nulls as
    # Nones means no such float (most records, told without a call per value). A record's own Nones
    # first: nothing else takes a null away, so as many as those already says it (a flat row, at C
    # speed, without looking at the type of each value).
    if encoded != b"null":  # b"null" alone: None, a lone non-finite float, or what orjson refused
        nulls = encoded.count(b"null")
        if (
            not nulls
            or (type(value) is dict and nulls == countOf(value.values(), None))
            or nulls == _nones(value)
            or not _non_finite(value)
        ):
            return encoded
    text = json.dumps(value, default=str, separators=(",", ":"), sort_keys=sort_keys)
    return text.encode() + (b"\n" if newline else b"")


def _encode(value: Any, option: int, sort_keys: bool = False) -> bytes:
    try:
        encoded = orjson.dumps(value, default=str, option=option)
    except TypeError:  # an integer past 64 bits, a string with a lone surrogate: stdlib json, exactly
        encoded = b"null"
    return _faithful(value, encoded, sort_keys, newline=bool(option & orjson.OPT_APPEND_NEWLINE))


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (no spaces), UTF-8."""
    return _encode(value, _OPTIONS)


def dumps_line(value: Any) -> bytes:
    """One JSON line: :func:`dumps` plus the newline, in one call."""
    return _encode(value, _OPTIONS | orjson.OPT_APPEND_NEWLINE)


def dumps_canonical(value: Any) -> bytes:
    """Keys sorted: the same value always gives the same bytes (for digests)."""
    return _encode(value, _SORTED, sort_keys=True)


def loads(data: bytes | str) -> Any:
    """Decoded by msgspec (as fast as orjson here, and exact for integers past 64 bits, which orjson
    turns into floats); Infinity and NaN (a record _faithful wrote, a vendor's answer) by stdlib json,
    which refuses anything else with a ValueError, as before."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError:
        return json.loads(data)


class Encoded(bytes):
    """A request body :func:`dumps` encoded already, sent as it is (a stage encodes the next batch
    while the vendor works on this one)."""

    __slots__ = ()


class Received(dict):  # type: ignore[type-arg]
    """A vendor's JSON object as decoded, keeping ``raw``: the bytes it was decoded from, so that a stage
    can stage what the vendor sent as it came instead of encoding it again (a page of 500 coverages
    takes 2.5 ms to encode and check; its bytes, nothing). Used as the dict it is everywhere else."""

    __slots__ = ("raw",)

    raw: bytes


class _Envelope(msgspec.Struct):
    data: msgspec.Raw = msgspec.Raw(b"null")


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def received_data(answer: bytes) -> Received | None:
    """The ``data`` object of an API answer ``{"data": {...}, ...}``, decoded once, with its bytes; or
    ``None`` for any other answer (not JSON, not an object, no object under ``data``, a number msgspec
    refuses), which the caller decodes as before and which says what is wrong with it."""
    try:
        raw = bytes(_ENVELOPE.decode(answer).data)
        data = _DECODER.decode(raw) if raw[:1] == b"{" else None
    except msgspec.MsgspecError:
        return None
    if not isinstance(data, dict):
        return None
    received = Received(data)
    received.raw = _one_line(raw)
    return received


def _one_line(raw: bytes) -> bytes:
    """A JSON value's bytes on one line. JSON holds no raw line break inside a string, so one between
    tokens (a pretty-printed answer) is whitespace: a space keeps the value on one JSON line."""
    return raw.replace(b"\n", b" ").replace(b"\r", b" ") if b"\n" in raw or b"\r" in raw else raw


class ReceivedItems(NamedTuple):
    """A page's objects as the vendor sent them: each one's ``order_key`` value and its bytes (one JSON
    line each), whether the page links to a next one, and the ``total`` it gives (``None``: none)."""

    items: list[tuple[Any, bytes]]
    more: bool
    total: Any = None


@functools.cache
def _page_decoders(key: str, order_key: str) -> tuple[msgspec.json.Decoder, msgspec.json.Decoder]:
    """Two decoders of a page: its objects as bytes (with the links and the total), and each object's
    ``order_key`` alone. Two passes at C speed cost less than a call per object (0.8 us a subscriber
    against 2.7, on a made page of 500)."""
    item = msgspec.defstruct("Item", [("value", Any, None)], rename={"value": order_key})

    def envelope(items: Any, *extra: tuple[str, Any, Any]) -> msgspec.json.Decoder:
        fields = [("items", items | None | msgspec.UnsetType, msgspec.UNSET), *extra]
        data = msgspec.defstruct("Data", fields, rename={"items": key})
        return msgspec.json.Decoder(msgspec.defstruct("Envelope", [("data", data | None, None)]))

    return envelope(list[msgspec.Raw], ("links", Any, None), ("total", Any, None)), envelope(list[item])


def received_items(answer: bytes, key: str, order_key: str) -> ReceivedItems | None:
    """The objects listed under ``data.<key>`` of an API answer, each kept as the bytes it came as (staged
    as they are, not decoded and encoded again), with its ``order_key`` value, which is all that is
    decoded of it. ``None`` for any other answer (no such list, an item that is not an object, not
    JSON), which the caller decodes as before and which says what is wrong with it. An explicit ``null``
    list is an empty page."""
    as_bytes, keys_only = _page_decoders(key, order_key)
    try:
        data = as_bytes.decode(answer).data
        if data is None or data.items is msgspec.UNSET:
            return None
        keyed = keys_only.decode(answer).data  # refuses an item that is not an object
    except msgspec.MsgspecError:
        return None
    lines = list(map(bytes, data.items or ()))
    if b"\n" in answer or b"\r" in answer:  # a pretty-printed page (most have no line break at all)
        lines = list(map(_one_line, lines))
    keys = [item.value for item in keyed.items or ()]
    links = data.links
    more = bool(links.get("next")) if isinstance(links, dict) else False
    return ReceivedItems(list(zip(keys, lines, strict=True)), more, data.total)
