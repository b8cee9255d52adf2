"""The staged records' codec: orjson, reading back exactly what stdlib json did."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benefits_hub import codec


def test_values_json_has_no_type_for_are_written_as_before() -> None:
    record = {"d": date(2026, 1, 2), "t": datetime(2026, 1, 2, 3, 4, 5), "m": Decimal("12.50"), "n": None}
    assert codec.dumps(record) == json.dumps(record, default=str, separators=(",", ":")).encode()


def test_an_infinite_float_from_the_database_survives_staging() -> None:
    # SQLite's NUMERIC turns a typed "1e400" into infinity: the rules must see it, not a blank.
    record = {"annual_salary": math.inf, "middle_name": None, "nested": [{"pct": -math.inf}]}
    back = codec.loads(codec.dumps_line(record))
    assert back["annual_salary"] == math.inf and back["nested"][0]["pct"] == -math.inf
    assert back["middle_name"] is None
    assert codec.dumps_line(record).endswith(b"\n")
    assert codec.dumps_canonical({"b": math.nan, "a": 1}).startswith(b'{"a":1')


def test_a_line_that_is_not_json_is_still_refused() -> None:
    with pytest.raises(ValueError):
        codec.loads(b'{"cut off')


def test_what_orjson_cannot_hold_exactly_is_written_and_read_back_exactly() -> None:
    record = {"account": 123456789012345678901234567890, "name": "lone \ud800 surrogate"}
    assert codec.loads(codec.dumps_line(record)) == record
    # A vendor's answer with a big number: exact, not a float.
    assert codec.loads(b'{"id": 123456789012345678901234567890}')["id"] == 123456789012345678901234567890


# Staged records as the hub makes them: rows of text, numbers and blanks, lists of rows, rows holding lists;
# text that holds the word "null"; floats that are infinite or NaN anywhere.
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True),
    st.sampled_from(["null", "a null here", "", "Ada"]), st.text(max_size=5),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=4),
    ),
    max_leaves=20,
)


def _same(a: object, b: object) -> bool:
    """Equal, a NaN being equal to a NaN and a tuple to the list JSON makes of it."""
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, list | tuple):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


@given(_VALUES)
def test_every_value_reads_back_as_it_was_written(value: object) -> None:
    # The quick count of Nones decides most records: it must never let an infinite float become a null.
    for encode in (codec.dumps, codec.dumps_line):
        assert _same(value, codec.loads(encode(value)))
    assert codec._nones(value) <= codec.dumps(value).count(b"null")


def _nones_counted_one_by_one(value: object) -> int:
    if value is None:
        return 1
    if type(value) is dict:
        return sum(map(_nones_counted_one_by_one, value.values()))
    if type(value) in (list, tuple):
        return sum(map(_nones_counted_one_by_one, value))
    return 0


@given(_VALUES)
def test_the_quick_count_of_nones_is_exact_at_every_depth(value: object) -> None:
    assert codec._nones(value) == _nones_counted_one_by_one(value)


def test_a_vendor_page_keeps_the_bytes_it_came_as_on_one_line() -> None:
    # Pretty-printed, with a line break escaped inside a value: the object stays one JSON line.
    answer = (
        b'{"data": {"payroll_coverages": [\n {"id": 1, "note": "a\\nb", "end": null}\n],\r\n "links": {}}}'
    )
    page = codec.received_data(answer)
    assert page == {"payroll_coverages": [{"id": 1, "note": "a\nb", "end": None}], "links": {}}
    assert b"\n" not in page.raw and b"\r" not in page.raw
    assert codec.loads(page.raw) == page


@pytest.mark.parametrize(
    "answer",
    [b"[1]", b'{"data": [1]}', b'{"data": null}', b'{"other": {}}', b'{"data": {"x": 1e400}}', b"not json"],
)
def test_any_other_answer_is_left_to_the_usual_decoding(answer: bytes) -> None:
    # Not an object under "data", or a number msgspec refuses (1e400): the caller decodes it as before.
    assert codec.received_data(answer) is None


def test_a_listing_page_keeps_each_object_as_the_bytes_it_came_as_with_its_order_key() -> None:
    answer = (
        b'{"data": {"total": 2, "subscribers": [\n {"id": 1, "employee_number": "E1", "note": "a\\nb"},'
        b'\r\n {"employee_number": "E2", "pay": 1e400, "x": {"employee_number": "inner"}}\n],'
        b' "links": {"next": "/subscribers?page=2"}}}'
    )
    page = codec.received_items(answer, "subscribers", "employee_number")
    assert page is not None and page.more
    assert [key for key, _line in page.items] == ["E1", "E2"]
    assert all(b"\n" not in line and b"\r" not in line for _key, line in page.items)
    # Decoded later, each line is the object PlanSource sent (1e400 as the infinity the rules refuse).
    first, second = (codec.loads(line) for _key, line in page.items)
    assert first == {"id": 1, "employee_number": "E1", "note": "a\nb"}
    assert second["pay"] == float("inf") and second["x"] == {"employee_number": "inner"}
    last_page = b'{"data": {"subscribers": null, "links": {"next": null}}}'
    last = codec.received_items(last_page, "subscribers", "employee_number")
    assert last == ([], False, None)


@pytest.mark.parametrize(
    "answer",
    [
        b'{"data": {"records": []}}',  # no such list: the caller says so
        b'{"data": {"subscribers": [{"employee_number": "E1"}, "E2"]}}',  # an item that is no object
        b'{"data": {"subscribers": [], "links": {"weight": 1e400}}}',  # a number msgspec refuses
        b'{"data": [1]}',
        b'{"data": {"subscribers": [{"employee_number": "E1"',  # cut off
        b"not json",
    ],
)
def test_any_other_listing_answer_is_left_to_the_usual_decoding(answer: bytes) -> None:
    assert codec.received_items(answer, "subscribers", "employee_number") is None
