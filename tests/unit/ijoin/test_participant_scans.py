"""The Participant Sync's merge of a plan's related rows with its participants, both in id order."""

from __future__ import annotations

import pytest

from benefits_hub.ijoin.participant_sync import _Related
from benefits_hub.lookup import OutOfOrder


def rows(*ids: str) -> list[dict[str, str]]:
    return [{"participant_id": pid, "n": str(n)} for n, pid in enumerate(ids)]


def test_each_participant_takes_its_own_rows_and_rows_of_no_participant_are_passed_over() -> None:
    related = _Related(iter(rows("A", "A", "B0", "C", "D")))  # B0: no such participant
    assert [r["n"] for r in related.take("A")] == ["0", "1"]
    assert related.take("B") == []
    assert [r["n"] for r in related.take("C")] == ["3"]
    assert [r["n"] for r in related.take("D")] == ["4"]
    assert related.take("E") == []


def test_a_scan_out_of_order_is_refused_rather_than_given_to_the_wrong_participant() -> None:
    related = _Related(iter(rows("A", "C", "B")))
    with pytest.raises(OutOfOrder):
        related.take("B")
        related.take("C")
