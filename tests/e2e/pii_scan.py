"""Finds seeded SSNs in text: the check behind the no-PII-in-logs test."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path


def ssn_forms(ssn: str) -> set[str]:
    digits = re.sub(r"\D", "", ssn)
    if len(digits) != 9:
        return {digits} if len(digits) >= 6 else set()
    return {digits, f"{digits[:3]}-{digits[3:5]}-{digits[5:]}", f"{digits[:3]} {digits[3:5]} {digits[5:]}"}


def find_ssns(texts: Iterable[tuple[str, str]], ssns: Iterable[str]) -> list[tuple[str, str]]:
    """(where, masked hit) for every seeded SSN found in any (where, text) pair."""
    forms = {form for ssn in ssns for form in ssn_forms(ssn)}
    if not forms:
        return []
    # One alternation, bounded by non-digits, so "123456789" inside a longer number is not a hit.
    pattern = re.compile(
        r"(?<!\d)(" + "|".join(map(re.escape, sorted(forms, key=len, reverse=True))) + r")(?!\d)"
    )
    hits = []
    for where, text in texts:
        for match in pattern.finditer(text):
            hits.append((where, "***-**-" + re.sub(r"\D", "", match.group(1))[-4:]))
    return hits


def read_texts(paths: Iterable[Path]) -> Iterable[tuple[str, str]]:
    for path in paths:
        yield str(path), path.read_text(errors="replace")
