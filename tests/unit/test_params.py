from __future__ import annotations

import pytest

from benefits_hub.params import ParamError, PlanSourceRunParams, parse_iso_date


def test_defaults() -> None:
    params = PlanSourceRunParams.parse({})
    assert params.delta is True and params.include_employees == () and params.lookback_days is None


@pytest.mark.parametrize("days", [0, 32, -1, "abc", 1.5, True])
def test_lookback_out_of_range_names_the_param(days) -> None:
    with pytest.raises(ParamError) as refused:
        PlanSourceRunParams.parse({"lookback_days": days})
    assert refused.value.param == "lookback_days"
    assert "Param 'lookback_days'" in str(refused.value)


@pytest.mark.parametrize("days", [1, 31, "7"])
def test_lookback_in_range(days) -> None:
    assert PlanSourceRunParams.parse({"lookback_days": days}).lookback_days == int(days)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("E1, E2", "no spaces"),
        ("E1,,E2", "empty person number"),
        (",E1", "empty person number"),
        ("E1;E2", "not a person number"),
    ],
)
def test_include_employees_refused(value: str, reason: str) -> None:
    with pytest.raises(ParamError) as refused:
        PlanSourceRunParams.parse({"include_employees": value})
    assert refused.value.param == "include_employees"
    assert reason in refused.value.reason


def test_include_employees_parsed_deduplicated() -> None:
    params = PlanSourceRunParams.parse({"include_employees": "E2,E1,E2"})
    assert params.include_employees == ("E2", "E1")


def test_blank_values_mean_empty() -> None:
    params = PlanSourceRunParams.parse(
        {"include_employees": " ", "lookback_days": "", "integration_run_name": ""}
    )
    assert (
        params.include_employees == ()
        and params.lookback_days is None
        and params.integration_run_name is None
    )


@pytest.mark.parametrize("value", ["2026/01/01", "01-01-2026", "2026-1-1", "tomorrow"])
def test_dates_must_be_iso(value: str) -> None:
    with pytest.raises(ParamError, match="deduction_start_date"):
        parse_iso_date("deduction_start_date", value)


def test_impossible_date_refused() -> None:
    with pytest.raises(ParamError, match="not a real calendar date"):
        parse_iso_date("plan_year_start_date", "2026-02-30")
    assert str(parse_iso_date("plan_year_start_date", "2025-12-31")) == "2025-12-31"


def test_reconciliation_pairs_in_the_hubs_words() -> None:
    from benefits_hub.params import ParamError, ReconciliationParams

    every = ("hcm_plansource_demographics", "plansource_hcm_deductions", "recordkeeper_ijoin")
    assert ReconciliationParams.parse({}).pairs == every
    assert ReconciliationParams.parse({"pairs": ""}).pairs == every
    assert ReconciliationParams.parse({"pairs": "plansource_hcm_deductions"}).pairs == every[1:2]
    assert ReconciliationParams.parse({"plan_ids": "P0001,P0002"}).plan_ids == ("P0001", "P0002")
    with pytest.raises(ParamError) as bad_plans:
        ReconciliationParams.parse({"plan_ids": "P0001, P0002"})
    assert bad_plans.value.param == "plan_ids" and "plan id" in str(bad_plans.value)
    assert str(ReconciliationParams.parse({"as_of_date": "2026-03-01"}).as_of_date) == "2026-03-01"
    with pytest.raises(ParamError) as bad_date:
        ReconciliationParams.parse({"as_of_date": "03/01/2026"})
    assert bad_date.value.param == "as_of_date"
    with pytest.raises(ParamError) as refused:
        ReconciliationParams.parse({"pairs": "hcm_payroll"})
    assert refused.value.param == "pairs"
    assert "'hcm_payroll' is not a pair the hub compares: use hcm_plansource_demographics, " in str(
        refused.value
    )
