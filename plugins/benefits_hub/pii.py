"""PII handling: one place that decides how an SSN, a birth date or a free text may be shown.

The hub never logs records. Where a value must appear (an error file, an exception message, a
vendor's error text), it goes through these functions first.
"""

from __future__ import annotations

import re

# Nine digits, with or without SSA dashes/spaces, not part of a longer number.
_SSN_LIKE = re.compile(r"(?<!\d)(\d{3})[- ]?(\d{2})[- ]?(\d{4})(?!\d)")
# A full calendar date in the forms vendors send (ISO, US slashes, PlanSource's 2018/01/04).
# A run or reference id (``manual__2026-12-06T11:06:12``) or a timestamp with a time of day is a moment a
# clerk must read back, never a birth date: masked are bare dates and dates at midnight (PlanSource
# sends birth dates as ``1980-01-02T00:00:00.000Z``).
_DATE_LIKE = re.compile(
    r"(?<!\d)(?<!__)(\d{4}[-/]\d{1,2}[-/]\d{1,2}|\d{1,2}/\d{1,2}/\d{4})(?!\d)(?!T(?!00:00))"
)


PII_FIELDS = frozenset({"ssn", "birth_date", "birthdate", "date_of_birth"})


def mask_ssn(ssn: str | None) -> str:
    """``***-**-1234``: the last four digits only, as payroll clerks are used to seeing them."""
    digits = re.sub(r"\D", "", ssn or "")
    if len(digits) < 4:
        return "***-**-****"
    return f"***-**-{digits[-4:]}"


def mask_birth_date(_value: str | None) -> str:
    # Even the year narrows identity when paired with a name; show nothing.
    return "****-**-**"


def mask_field(field: str, value: object) -> str:
    """The form of ``value`` that may appear in an error file for ``field``."""
    if value is None:
        return ""
    text = str(value)
    name = field.lower()
    if name == "ssn":
        return mask_ssn(text)
    if name in PII_FIELDS:
        return mask_birth_date(text)
    # A known non-PII field (hire date, pay group...) keeps its dates; only SSN-shaped runs go.
    return _SSN_LIKE.sub(lambda m: mask_ssn(m.group(0)), text)[:300]


def redact(text: str, limit: int = 300) -> str:
    """Strip anything SSN- or birth-date-shaped from free text (vendor error bodies, exception text)."""
    text = _SSN_LIKE.sub(lambda m: mask_ssn(m.group(0)), text)
    text = _DATE_LIKE.sub("****-**-**", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
