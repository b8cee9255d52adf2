"""The staged records' codec: orjson, reading back exactly what stdlib json did."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal

import pytest

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
