"""Parsing vendor values the one way the hub does it: calendar dates and money.

PlanSource sends dates as ``2018/01/04``, ``2018-01-04`` or ``2018-01-04T00:00:00.000Z`` in one
payload. They are calendar dates: the date part is taken as written and never converted through a
time zone (turning that ``Z`` into local time moves it a day). Money comes as strings and becomes
``Decimal``, never float.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

_DATE_PREFIX = re.compile(r"^(\d{4})[-/](\d{2})[-/](\d{2})(?:$|[T ])")
CENT = Decimal("0.01")
# NUMERIC(12,2), the HCM's and the recordkeeper's money columns: anything larger cannot be stored.
MONEY_LIMIT = Decimal("10000000000")
TOO_LARGE = "is too large to be an amount (at most 9,999,999,999.99)"


class ValueProblem(ValueError):
    """A value that cannot be used; the message is a clerk's reason and carries no PII."""


def calendar_date(value: Any) -> date | None:
    """``None`` for empty; a :class:`date` from the date part as written; else :class:`ValueProblem`."""
    if type(value) is str:
        return _date_text(value)
    if value is None:
        return None
    if isinstance(value, date):
        return value
    return _parse_date(str(value))


def _parse_date(text: str) -> date | None:
    if len(text) == 10 and text[4] == "-" == text[7] and text.isascii():
        # The usual YYYY-MM-DD, parsed in C (a census has three dates per employee); anything it refuses
        # goes the general way below, which says why.
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    text = text.strip()
    if not text:
        return None
    match = _DATE_PREFIX.match(text)
    if not match:
        raise ValueProblem("is not a date written YYYY-MM-DD (or YYYY/MM/DD, or an ISO date and time)")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueProblem("is not a real calendar date") from None


def money(value: Any) -> Decimal | None:
    """``None`` for empty; a Decimal to the cent; else :class:`ValueProblem`."""
    if type(value) is str:
        return _money_text(value)
    amount = number(value)
    return None if amount is None else amount.quantize(CENT)


def number(value: Any) -> Decimal | None:
    """``None`` for empty; the exact Decimal (33.333 stays 33.333); else :class:`ValueProblem`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueProblem("is not an amount")
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        # A database NUMERIC column turns "1e400" into infinity on the way in.
        raise ValueProblem(TOO_LARGE)
    try:
        # A float (SQLite's NUMERIC, a JSON number) goes through its shortest repr: 0.1 stays 0.1.
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ValueProblem(f"is not a number{_money_hint(str(value))}") from None
    if not amount.is_finite():
        raise ValueProblem("is not a number")
    # "1e400" is a finite Decimal that cannot be rounded to the cent: refuse it before quantize raises.
    if abs(amount) >= MONEY_LIMIT:
        raise ValueProblem(TOO_LARGE)
    return amount


# The same few texts come again and again (a plan's premiums, its effective dates: a million coverage
# records held 325 premiums and 9 dates), so each is parsed once. Dates and Decimals never change, so a
# parsed one is shared safely; a text that fails is not kept and fails again with its reason. Bounded:
# a column of distinct values (salaries, birth dates) only costs the cache's upkeep.
_date_text = lru_cache(maxsize=1 << 14)(_parse_date)


@lru_cache(maxsize=1 << 14)
def _money_text(text: str) -> Decimal | None:
    amount = number(text)
    return None if amount is None else amount.quantize(CENT)


# A cell starting with one of these runs as a formula when a person opens a CSV in a spreadsheet.
# A plain number or phone number: may start with + or - and still is no formula ("-12.50", "+1 555 0100").
_NUMBER_OR_PHONE = re.compile(r"[+-]?[\d\s().,/-]*\d[\d\s().,/-]*")


# The first characters that can make a cell a formula (looks_like_formula decides).
FORMULA_STARTS = "=@\t\r+-"


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet would run ``text`` as a formula when the file is opened: it starts with
    ``=``, ``@``, a tab or a carriage return, or with ``+``/``-`` and is not a plain number or phone."""
    if not text:
        return False
    if text[0] in "=@\t\r":
        return True
    return text[0] in "+-" and not _NUMBER_OR_PHONE.fullmatch(text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# Text that starts with none of these and holds only printable characters needs no closer look.
_LOOK_CLOSER = FORMULA_STARTS + " \u00a0"


def text_problem(
    label: str, value: Any, limit: int | None, *, formula: bool = True
) -> tuple[str, str] | None:
    """(rule, reason) when free text cannot be passed on as it is, else ``None``; ``label`` names it."""
    # Almost every value is plain text within its limit: told apart by two C-level checks (the census
    # checks 15 fields of a million employees). isprintable() is False for every control character.
    if (
        type(value) is str
        and value.isprintable()
        and (limit is None or len(value) <= limit)
        and (not value or value[0] not in _LOOK_CLOSER)
    ):
        return None
    return _text_problem(label, value, limit, formula=formula)


def _text_problem(
    label: str, value: Any, limit: int | None, *, formula: bool = True
) -> tuple[str, str] | None:
    text = None if value is None else str(value).strip()
    if not text:
        return None
    if limit is not None and len(text) > limit:
        return "text:too_long", f"The {label} is {len(text):,} characters long; at most {limit} are allowed."
    if _CONTROL.search(text):
        return "text:control_character", f"The {label} holds a line break, tab or other control character."
    if formula and looks_like_formula(text):
        return (
            "text:formula",
            f"The {label} starts with '{text[0]}', which a spreadsheet runs as a formula when the file "
            "is opened.",
        )
    return None


def _money_hint(text: str) -> str:
    # What a clerk most often typed instead of 12.50, said back in their terms.
    if any(sign in text for sign in "$€£"):
        return " (leave out the currency sign: 12.50)"
    if "," in text:
        return " (use a decimal point and no thousands separator: 1234.50)"
    return ""


def utc_timestamp(value: Any) -> str | None:
    """A vendor timestamp as ``YYYY-MM-DD HH:MM:SS`` in UTC (comparable as text), or ``None``."""
    from datetime import UTC, datetime

    if value is None or not str(value).strip():
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    # isoformat, not strftime: a third of the time, and a year before 1000 keeps four digits, so the
    # text still sorts as the time does.
    return moment.isoformat(" ", "seconds")
