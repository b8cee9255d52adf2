"""The hub's trigger form: fields from the params, each refusal in the hub's words, re-run names."""

from __future__ import annotations

from typing import Any

import pytest

from benefits_hub.params import (
    deduction_start_date_param,
    delta_param,
    include_employees_param,
    integration_run_name_param,
    lookback_days_param,
    plan_year_start_date_param,
)
from benefits_hub.ui.trigger import check_submission, form_fields, rerun_name

EXPORT, IMPORT = "plansource_hcm_demographic_export", "plansource_deductions_import"


def _params(*names: str) -> dict[str, tuple[Any, dict[str, Any]]]:
    made = {
        "integration_run_name": integration_run_name_param(),
        "delta": delta_param(),
        "include_employees": include_employees_param(),
        "lookback_days": lookback_days_param(),
        "deduction_start_date": deduction_start_date_param(),
        "plan_year_start_date": plan_year_start_date_param(),
    }
    return {n: (made[n].value, {**made[n].schema, "description": made[n].description}) for n in names}


EXPORT_PARAMS = _params("integration_run_name", "delta", "include_employees", "lookback_days")
IMPORT_PARAMS = _params(
    "integration_run_name", "delta", "include_employees", "lookback_days", "deduction_start_date",
    "plan_year_start_date",
)  # fmt: skip


def test_fields_carry_titles_kinds_and_values() -> None:
    fields = {f.name: f for f in form_fields(EXPORT_PARAMS, {"lookback_days": 3, "delta": False})}
    assert fields["lookback_days"].title == "Lookback Days" and fields["lookback_days"].kind == "integer"
    assert fields["lookback_days"].value == "3" and fields["delta"].value == "false"
    assert fields["include_employees"].value == "" and fields["delta"].kind == "boolean"


@pytest.mark.parametrize(
    ("dag_id", "params", "form", "field", "words"),
    [
        (EXPORT, EXPORT_PARAMS, {"include_employees": "E1, E2"}, "include_employees", "no spaces"),
        (EXPORT, EXPORT_PARAMS, {"include_employees": "E1,,E2"}, "include_employees", "empty person number"),
        (EXPORT, EXPORT_PARAMS, {"lookback_days": "40"}, "lookback_days", "from 1 to 31 days, got 40"),
        (EXPORT, EXPORT_PARAMS, {"lookback_days": "0"}, "lookback_days", "from 1 to 31 days, got 0"),
        (EXPORT, EXPORT_PARAMS, {"lookback_days": "two"}, "lookback_days", "whole number"),
        (EXPORT, EXPORT_PARAMS, {"integration_run_name": "x" * 201}, "integration_run_name", "200"),
        (IMPORT, IMPORT_PARAMS, {"deduction_start_date": "2026-13-01"}, "deduction_start_date", "calendar"),
        (IMPORT, IMPORT_PARAMS, {"deduction_start_date": "01/10/2025"}, "deduction_start_date", "YYYY-MM-DD"),
        (
            IMPORT, IMPORT_PARAMS, {"deduction_start_date": "2025-10-01"}, "plan_year_start_date",
            "required with Deduction Start Date",
        ),
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_next_to_its_field_in_the_hubs_words(
    dag_id: str, params: dict[str, Any], form: dict[str, str], field: str, words: str
) -> None:
    fields = form_fields(params, {})
    assert check_submission(dag_id, fields, {"delta": "true", **form}) is None
    problems = {f.name: f.problem for f in fields if f.problem}
    assert field in problems and words in problems[field], problems
    # What was typed stays in the field: never clamped or dropped.
    typed = {f.name: f.value for f in fields}
    for name, value in form.items():
        assert typed[name] == value


def test_a_good_submit_becomes_the_runs_conf() -> None:
    fields = form_fields(EXPORT_PARAMS, {})
    conf = check_submission(
        EXPORT,
        fields,
        {"delta": "true", "include_employees": "E1,E2", "lookback_days": "3", "integration_run_name": ""},
    )
    assert conf == {
        "integration_run_name": None,
        "delta": True,
        "include_employees": "E1,E2",
        "lookback_days": 3,
    }


def test_rerun_names_count_up() -> None:
    assert rerun_name("Nightly", []) == "Nightly (re-run 1)"
    assert rerun_name("Nightly (re-run 1)", ["Nightly (re-run 1)"]) == "Nightly (re-run 2)"
    assert rerun_name("Nightly", ["Nightly (re-run 1)", "Nightly (re-run 4)", "Other (re-run 9)"]) == (
        "Nightly (re-run 5)"
    )


def test_a_circuit_breaker_threshold_is_a_number_field_checked_in_the_hubs_words() -> None:
    from benefits_hub.params import hold_threshold_param

    made = hold_threshold_param("hold_terminations_pct")
    params = {**EXPORT_PARAMS, "hold_terminations_pct": (made.value, {**made.schema, "description": ""})}
    [field] = [f for f in form_fields(params, {}) if f.name == "hold_terminations_pct"]
    assert (field.kind, field.value, field.title) == ("number", "2", "Hold if Terminations Exceed (%)")

    fields = form_fields(params, {})
    conf = check_submission(EXPORT, fields, {"delta": "true", "hold_terminations_pct": "5.5"})
    assert conf is not None and conf["hold_terminations_pct"] == 5.5

    fields = form_fields(params, {})
    assert check_submission(EXPORT, fields, {"delta": "true", "hold_terminations_pct": "150"}) is None
    problems = {f.name: f.problem for f in fields if f.problem}
    assert "percentage from 0 to 100, got 150" in problems["hold_terminations_pct"]
