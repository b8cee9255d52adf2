"""The circuit breaker's rules: which shares trip which threshold, and the words the approver reads."""

from __future__ import annotations

import pytest

from benefits_hub.breaker import THRESHOLDS, ChangeSet, Share, held_reason, hold_body, limit_of, trips
from benefits_hub.params import ParamError, PlanSourceRunParams


def change_set(**shares: Share) -> ChangeSet:
    return ChangeSet(counts={"Terminations": 60, "New subscribers": 0}, shares=shares)


def test_a_share_over_its_default_limit_trips_and_says_what_and_by_how_much() -> None:
    tripped = trips(change_set(hold_terminations_pct=Share(part=60, whole=200)), {})
    assert [t.param for t in tripped] == ["hold_terminations_pct"]
    assert tripped[0].reason == "60 of 200 active employees would be terminated (30%, above the 2% limit)"
    assert held_reason(tripped).startswith("Delivery held for approval: 60 of 200 active employees")


def test_exactly_at_the_limit_does_not_trip_and_the_param_overrides_the_default() -> None:
    at_limit = change_set(hold_terminations_pct=Share(part=4, whole=200))  # 2.0 %
    assert trips(at_limit, {}) == []
    assert [t.limit for t in trips(at_limit, {"hold_terminations_pct": 1})] == [1.0]
    everyone = change_set(hold_terminations_pct=Share(part=200, whole=200))
    assert trips(everyone, {"hold_terminations_pct": 100}) == []


def test_an_empty_population_never_trips_and_a_blank_param_is_the_default() -> None:
    assert trips(change_set(hold_changing_pct=Share(part=5, whole=0)), {}) == []
    assert limit_of("hold_row_drop_pct", {"hold_row_drop_pct": ""}) == THRESHOLDS["hold_row_drop_pct"].default


def test_every_threshold_that_trips_is_named_once() -> None:
    shares = {
        "hold_terminations_pct": Share(part=60, whole=200),
        "hold_changing_pct": Share(part=60, whole=200),
        "hold_row_drop_pct": Share(part=30, whole=200, now=170),
    }
    tripped = trips(ChangeSet(shares=shares), {})
    assert [t.param for t in tripped] == list(shares)
    said = "the HCM gave 170 employees, 30 fewer than the 200 of the last successful full run"
    assert said in tripped[2].reason


def test_the_approvers_page_shows_threshold_counts_sample_and_what_each_answer_does() -> None:
    shares = {"hold_terminations_pct": Share(part=60, whole=200)}
    sample = [{"Employee": "E000001", "Change": "update + terminate", "Fields": "employment_status | x"}]
    held = ChangeSet(counts={"Terminations": 60}, shares=shares, sample=sample)
    body = hold_body("PlanSource HCM Demographic Export", "Hourly", held, trips(held, {}))
    measured = "60 of 200 active employees would be terminated: **30%**"
    assert f"| Hold if Terminations Exceed (%) | {measured} | 2% |" in body
    assert "| Terminations | 60 |" in body
    assert "| E000001 | update + terminate | employment_status / x |" in body  # a pipe cannot break the table
    assert "**Reject** sends nothing" in body


@pytest.mark.parametrize("value", [-1, 101, "lots", True])
def test_a_threshold_param_outside_0_to_100_is_refused_in_words(value: object) -> None:
    with pytest.raises(ParamError) as refused:
        PlanSourceRunParams.parse({"hold_changing_pct": value})
    assert refused.value.param == "hold_changing_pct"
    assert "must be a percentage from 0 to 100" in refused.value.reason


def test_a_threshold_param_in_range_or_blank_is_taken() -> None:
    params = PlanSourceRunParams.parse({"hold_changing_pct": "35", "hold_terminations_pct": ""})
    assert params.hold_changing_pct == 35.0 and params.hold_terminations_pct is None


def test_the_plans_of_a_run_add_up_to_one_change_set_in_participants_words() -> None:
    """A sync that fans out per plan holds once, on the whole run: each plan's counts and shares are
    added up, the samples joined (up to the sample size), and the reasons speak of participants."""
    plans = [
        ChangeSet(
            counts={"Terminations": n},
            shares={"hold_terminations_pct": Share(part=n, whole=100), "hold_row_drop_pct": Share(
                part=0, whole=100, now=100)},
            sample=[{"Participant": f"P{k}/{i}"} for i in range(8)],
            subject="participants",
        )
        for k, n in enumerate((1, 5))
    ]  # fmt: skip
    run = ChangeSet.summed(plans, sample_columns=("Participant",), subject="participants")
    assert run.counts == {"Terminations": 6}
    assert run.shares["hold_terminations_pct"] == Share(part=6, whole=200)
    assert run.shares["hold_row_drop_pct"] == Share(part=0, whole=200, now=200)
    assert len(run.sample) == 10 and run.sample[-1] == {"Participant": "P1/1"}
    [tripped] = trips(run, {})  # 3 %: one plan alone (1 %) would not have held
    assert (
        tripped.reason == "6 of 200 active participants in iJoin would be terminated (3%, above the 2% limit)"
    )
    assert "Participant" in hold_body("iJoin Participant Sync", "run", run, [tripped])


def test_the_participant_syncs_own_threshold_names_contribution_rates() -> None:
    rates = ChangeSet(shares={"hold_rate_changes_pct": Share(part=50, whole=200)}, subject="participants")
    [tripped] = trips(rates, {})
    assert tripped.title == "Hold if Contribution Rates Change for More Than (%)"
    assert tripped.reason.startswith("50 of 200 participants in iJoin would get new contribution rates")
    assert trips(rates, {"hold_rate_changes_pct": 25}) == []
