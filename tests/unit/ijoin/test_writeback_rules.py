from __future__ import annotations

import pytest

from benefits_hub.ijoin.writeback import election_problems


def test_good_elections() -> None:
    assert (
        election_problems(
            {"kind": "contribution_rate", "contribution_rates": {"pretax_pct": "6", "roth_pct": "2"}}
        )
        == []
    )
    assert election_problems({"kind": "allocation", "allocations": [{"pct": "70"}, {"pct": "30"}]}) == []


@pytest.mark.parametrize(
    ("election", "reason"),
    [
        ({"kind": "contribution_rate", "contribution_rates": {"pretax_pct": "-1"}}, "outside 0-100%"),
        (
            {"kind": "contribution_rate", "contribution_rates": {"pretax_pct": "60", "roth_pct": "50"}},
            "more than 100%",
        ),
        ({"kind": "contribution_rate", "contribution_rates": {"pretax_pct": "six"}}, "not a number"),
        ({"kind": "allocation", "allocations": [{"pct": "70"}]}, "add up to 70.00%"),
        ({"kind": "loan"}, "Unknown election kind"),
    ],
)
def test_refused_elections(election: dict, reason: str) -> None:
    assert any(reason in problem for problem in election_problems(election))
