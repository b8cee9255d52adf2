from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benefits_hub.values import ValueProblem, calendar_date, money, utc_timestamp


@pytest.mark.parametrize(
    "raw",
    ["2026-01-04", "2026/01/04", "2026-01-04T00:00:00.000Z", "2026-01-04T23:30:00-08:00", "2026-01-04 00:00"],
)
def test_calendar_dates_never_shift(raw: str) -> None:
    assert calendar_date(raw) == date(2026, 1, 4)


@pytest.mark.parametrize(
    ("raw", "reason"), [("01/04/2026", "not a date"), ("2026-02-30", "not a real"), ("x", "not a date")]
)
def test_bad_dates(raw: str, reason: str) -> None:
    with pytest.raises(ValueProblem, match=reason):
        calendar_date(raw)


def test_empty_date() -> None:
    assert calendar_date(None) is None and calendar_date(" ") is None


def test_money_is_decimal_to_the_cent() -> None:
    assert money("70000.0") == Decimal("70000.00")
    assert money("12.345") == Decimal("12.34") or money("12.345") == Decimal("12.35")
    assert money(" 5 ") == Decimal("5.00")
    assert money("") is None and money(None) is None


def test_money_from_a_database_float_is_exact() -> None:
    assert money(0.1) == Decimal("0.10") and money(25311.4) == Decimal("25311.40")


@pytest.mark.parametrize("raw", ["abc", "NaN", "Infinity", float("nan"), True])
def test_bad_money(raw: object) -> None:
    with pytest.raises(ValueProblem):
        money(raw)


@pytest.mark.parametrize(
    ("text", "formula"),
    [
        ("=cmd|' /C calc'!A0", True), ("=HYPERLINK(\"http://x\")", True), ("@SUM(1)", True),
        ("+cmd", True), ("-2+3", True), ("\tx", True), ("-12.50", False), ("+1 555 0100", False),
        ("+1 (555) 010-0100", False), ("12.50", False), ("Ada", False), ("", False), ("-", True),
    ],
)  # fmt: skip
def test_formula_shapes_and_plain_numbers(text: str, formula: bool) -> None:
    from benefits_hub.values import looks_like_formula

    assert looks_like_formula(text) is formula


def test_every_csv_the_hub_writes_escapes_formulas_but_not_numbers() -> None:
    import csv
    import io

    from benefits_hub.staging import SafeCsvWriter, SafeDictWriter

    rows = [["=cmd|x", "-12.50", "+1 555 0100", "@SUM(1)", "Ada"]]
    plain, keyed = io.StringIO(), io.StringIO()
    SafeCsvWriter(plain).writerows(rows)
    census = SafeDictWriter(keyed, fieldnames=["a", "b"])
    census.writeheader()
    census.writerow({"a": "=HYPERLINK(1)", "b": "-3"})
    assert next(csv.reader(io.StringIO(plain.getvalue()))) == [
        "'=cmd|x",
        "-12.50",
        "+1 555 0100",
        "'@SUM(1)",
        "Ada",
    ]
    assert list(csv.reader(io.StringIO(keyed.getvalue())))[1] == ["'=HYPERLINK(1)", "-3"]
    # The census's writer (extra fields ignored, a missing one blank) escapes the same way.
    ignoring = io.StringIO()
    SafeDictWriter(ignoring, fieldnames=["a", "b", "c"], extrasaction="ignore").writerow(
        {"a": "@x", "b": None, "ssn": "123-45-6789"}
    )
    assert next(csv.reader(io.StringIO(ignoring.getvalue()))) == ["'@x", "", ""]


@settings(max_examples=3000, deadline=None)
@given(
    value=st.one_of(st.text(), st.text(alphabet=" \t\r\n=+-@\u00a0\u2003\x00\x1f\x7faZ09.,()", max_size=12)),
    limit=st.one_of(st.none(), st.integers(0, 15)),
    formula=st.booleans(),
)
def test_the_quick_look_at_free_text_never_passes_what_the_full_check_refuses(
    value: str, limit: int | None, formula: bool
) -> None:
    from benefits_hub.values import _text_problem, text_problem

    assert text_problem("city", value, limit, formula=formula) == _text_problem(
        "city", value, limit, formula=formula
    )


def _outcome(raw: str) -> object:
    try:
        return calendar_date(raw)
    except ValueProblem as problem:
        return str(problem)


@settings(max_examples=500)
@given(
    st.one_of(
        st.from_regex(r"\A[0-9\u0663]{4}-[0-9x ]{2}-[0-9T ]{2}\Z", fullmatch=True),  # the quick path's shape
        st.text(alphabet="0123456789-/T:+Z x\u0663", min_size=10, max_size=10),
    )
)
def test_the_quick_yyyy_mm_dd_path_answers_as_the_general_one(raw: str) -> None:
    # A leading space takes the general path (stripped there): both must say the same.
    assert _outcome(raw) == _outcome(" " + raw)


@pytest.mark.parametrize(
    "raw", ["2026-01-04", "2024-02-29", "2026-02-29", "2026-13-01", "2026-00-10", "0000-01-01"]
)
def test_the_quick_path_on_the_edges(raw: str) -> None:
    assert _outcome(raw) == _outcome(" " + raw)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-04T05:06:07.123Z", "2026-03-04 05:06:07"),  # to the second, as the HCM column holds it
        ("2026-03-04T00:30:00-05:00", "2026-03-04 05:30:00"),  # in UTC
        ("2026-03-04 05:06:07", "2026-03-04 05:06:07"),  # no zone: as written
        ("0999-01-02T03:04:05Z", "0999-01-02 03:04:05"),  # four digits: the text sorts as the time does
        ("  ", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_vendor_timestamps_become_utc_text_that_sorts_as_time(value: object, expected: str | None) -> None:
    assert utc_timestamp(value) == expected


def test_a_text_parsed_again_gives_the_same_answer_and_a_bad_one_its_reason_every_time() -> None:
    # Texts are parsed once and remembered (a million records hold a few hundred premiums); a text
    # that fails is not remembered as anything: it fails again, with its reason, the next time.
    for _ in range(3):
        assert money("50.00") == Decimal("50.00") and calendar_date("2026/01/04") == date(2026, 1, 4)
        with pytest.raises(ValueProblem, match="decimal point"):
            money("1,234.50")
        with pytest.raises(ValueProblem, match="not a real"):
            calendar_date("2026-02-30")
    # Not a text: parsed as before, never remembered by a text of the same look.
    assert money(50) == Decimal("50.00") and calendar_date(date(2026, 1, 4)) == date(2026, 1, 4)
