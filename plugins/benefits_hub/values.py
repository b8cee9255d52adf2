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
from typing import Any

_DATE_PREFIX = re.compile(r"^(\d{4})[-/](\d{2})[-/](\d{2})(?:$|[T ])")
CENT = Decimal("0.01")


class ValueProblem(ValueError):
    """A value that cannot be used; the message is a clerk's reason and carries no PII."""


def calendar_date(value: Any) -> date | None:
    """``None`` for empty; a :class:`date` from the date part as written; else :class:`ValueProblem`."""
    if value is None:
        return None
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    match = _DATE_PREFIX.match(text)
    if not match:
        raise ValueProblem("is not a date in a form PlanSource sends (YYYY-MM-DD, YYYY/MM/DD or ISO time)")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueProblem("is not a real calendar date") from None


def money(value: Any) -> Decimal | None:
    """``None`` for empty; a Decimal to the cent; else :class:`ValueProblem`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueProblem("is not an amount")
    try:
        # A float (SQLite's NUMERIC, a JSON number) goes through its shortest repr: 0.1 stays 0.1.
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ValueProblem("is not a number") from None
    if not amount.is_finite():
        raise ValueProblem("is not a number")
    return amount.quantize(CENT)


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
    return moment.strftime("%Y-%m-%d %H:%M:%S")
