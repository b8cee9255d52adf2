"""Finds seeded SSNs in text: the check behind the no-PII-in-logs test."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path


def test_homes() -> list[Path]:
    """Every Airflow home this test run used: those the parallel workers listed in
    ``HUB_TEST_HOMES_FILE`` (tests/conftest.py writes them), and this session's own."""
    listed = Path(os.environ.get("HUB_TEST_HOMES_FILE") or "/nonexistent")
    homes = [Path(line) for line in listed.read_text().split()] if listed.is_file() else []
    homes.append(Path(os.environ["AIRFLOW_HOME"]))
    return sorted({home for home in homes if home.is_dir()})


test_homes.__test__ = False  # a helper, not a test


def ssn_forms(ssn: str) -> set[str]:
    digits = re.sub(r"\D", "", ssn)
    if len(digits) != 9:
        return {digits} if len(digits) >= 6 else set()
    return {digits, f"{digits[:3]}-{digits[3:5]}-{digits[5:]}", f"{digits[:3]} {digits[3:5]} {digits[5:]}"}


# Every run of digits an SSN could be written as: 123-45-6789, 123 45 6789, or digits alone (6 or more,
# for a malformed seeded SSN too), bounded by non-digits so "123456789" inside a longer number is not one.
_SSN_SHAPED = re.compile(r"(?<!\d)(\d{3}[- ]\d{2}[- ]\d{4}|\d{6,})(?!\d)")


def find_ssns(texts: Iterable[tuple[str, str]], ssns: Iterable[str]) -> list[tuple[str, str]]:
    """(where, masked hit) for every seeded SSN found in any (where, text) pair. Each SSN-shaped token
    is looked up in the set of seeded forms: one pass over the text, however many people were seeded
    (an alternation of thousands of forms took minutes over a whole suite's logs)."""
    forms = {form for ssn in ssns for form in ssn_forms(ssn)}
    if not forms:
        return []
    hits = []
    for where, text in texts:
        for match in _SSN_SHAPED.finditer(text):
            if match.group(1) in forms:
                hits.append((where, "***-**-" + re.sub(r"\D", "", match.group(1))[-4:]))
    return hits


def read_texts(paths: Iterable[Path]) -> Iterable[tuple[str, str]]:
    for path in paths:
        yield str(path), path.read_text(errors="replace")


# A full calendar date in the forms the data and the vendors use: ISO (the HCM, PlanSource and the
# recordkeeper all store birth dates so), PlanSource's 2018/01/04, and US 01/04/2018.
_DATE_TOKEN = re.compile(r"(?<!\d)(\d{4})([-/])(\d{2})\2(\d{2})(?!\d)|(?<!\d)(\d{2})/(\d{2})/(\d{4})(?!\d)")


def find_birth_dates(texts: Iterable[tuple[str, str]], birth_dates: Iterable[str]) -> list[tuple[str, str]]:
    """(where, year only) for every seeded full birth date found, in any of the forms above.

    Task logs are full of dates (windows, timestamps, plan years): only a date that is exactly some
    seeded person's birth date counts, and the hit is reported without its month and day.
    """
    wanted = set(birth_dates)
    hits = []
    for where, text in texts:
        for match in _DATE_TOKEN.finditer(text):
            if match.group(1):
                iso = f"{match.group(1)}-{match.group(3)}-{match.group(4)}"
            else:
                iso = f"{match.group(7)}-{match.group(5)}-{match.group(6)}"
            if iso in wanted:
                hits.append((where, f"{iso[:4]}-**-**"))
    return hits


def find_secrets(texts: Iterable[tuple[str, str]], secrets: dict[str, str]) -> list[tuple[str, str]]:
    """(where, the secret's name) for every secret value (name -> value) found verbatim."""
    return [
        (where, name) for where, text in texts for name, value in secrets.items() if value and value in text
    ]
