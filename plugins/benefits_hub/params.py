"""Trigger-form params shared by the integrations, and their validation.

Two layers refuse a bad value, both naming the param:
- the JSON schema on each :class:`~airflow.sdk.Param` (Airflow checks it at trigger time: the UI and the
  REST API answer 400, ``airflow dags test`` exits 1);
- :class:`PlanSourceRunParams`, parsed in the ``validate`` stage, which also covers rules a JSON schema
  cannot express and gives a payroll clerk's wording.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, TypeVar

from airflow.sdk import Param
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

# Person numbers separated by commas, no spaces (the seed's rule).
INCLUDE_EMPLOYEES_PATTERN = r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
LOOKBACK_DAYS_MIN = 1
LOOKBACK_DAYS_MAX = 31
RUN_NAME_MAX = 200


_M = TypeVar("_M", bound=BaseModel)


class ParamError(ValueError):
    """A trigger param was refused; the message names the param and says why."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"Param '{param}': {reason}")
        self.param = param
        self.reason = reason


def integration_run_name_param() -> Param:
    return Param(
        None,
        type=["null", "string"],
        maxLength=RUN_NAME_MAX,
        title="Integration Run Name",
        description=(
            "Optional. A unique name that makes this run easy to find in the Run Summary. "
            "Left empty, the name is the integration's name with a date and time stamp."
        ),
    )


def delta_param(default: bool = True) -> Param:
    return Param(
        default,
        type="boolean",
        title="Delta",
        description=(
            "On: send only employees changed in the window (Lookback Days, or since the last "
            "successful run). Off: send everyone."
        ),
    )


def include_employees_param() -> Param:
    return Param(
        None,
        type=["null", "string"],
        pattern=f"{INCLUDE_EMPLOYEES_PATTERN}|^$",
        title="Include Employees",
        description=(
            "Optional. Person numbers as the HCM knows them, separated by a comma and no spaces "
            "(E000101,E000102). Empty means everyone. A person number the HCM does not know is "
            "reported as an error row."
        ),
    )


def lookback_days_param() -> Param:
    return Param(
        None,
        type=["null", "integer"],
        minimum=LOOKBACK_DAYS_MIN,
        maximum=LOOKBACK_DAYS_MAX,
        title="Lookback Days",
        description=(
            "1 to 31. With Delta on, how many days of changes to include. Leave empty on a schedule: "
            "the run then covers the time since the last successful run."
        ),
    )


def qualify_delta_param(default: bool = False) -> Param:
    return Param(
        default,
        type="boolean",
        title="Qualify Delta",
        description=(
            "On: compare each changed employee with what was last delivered and send only real "
            "changes (an HCM edit to a field PlanSource does not receive sends nothing)."
        ),
    )


def dry_run_param() -> Param:
    return Param(
        False,
        type="boolean",
        title="Dry Run",
        description=(
            "On: work out everything a real run would send and show it on the run's page as a preview, "
            "but send nothing and leave the window where it is (the next real run still covers it)."
        ),
    )


def hold_threshold_param(name: str, subject: str = "employees") -> Param:
    """A circuit-breaker threshold (:data:`benefits_hub.breaker.THRESHOLDS_BY_SUBJECT`), a percentage,
    in the words of whose changes it measures (``employees``, ``participants``)."""
    from benefits_hub.breaker import THRESHOLDS_BY_SUBJECT

    threshold = THRESHOLDS_BY_SUBJECT[subject][name]
    return Param(
        threshold.default,
        type="number",
        minimum=0,
        maximum=100,
        title=threshold.title,
        description=f"{threshold.description} Default {threshold.default:g}.",
    )


def repair_params(subjects: str = "include_employees") -> dict[str, Param]:
    """The params of a reconciliation's repair DAG: whom (``include_employees``) or which plans
    (``plan_ids``) to repair, and which reconciliation asked."""
    return {
        "integration_run_name": integration_run_name_param(),
        subjects: include_employees_param() if subjects == "include_employees" else plan_ids_param(),
        "reconciliation_reference_id": Param(
            None,
            type=["null", "string"],
            title="Reconciliation Reference ID",
            description="The Hub Reconciliation run whose discrepancies this repairs (Repair fills it in).",
        ),
    }


def date_param(title: str, description: str) -> Param:
    return Param(
        None,
        type=["null", "string"],
        format="date",
        pattern=f"{DATE_PATTERN}|^$",
        title=title,
        description=description,
    )


def deduction_start_date_param() -> Param:
    return date_param(
        "Deduction Start Date",
        "YYYY-MM-DD. The date of the earliest PlanSource change to include. For the initial import of a "
        "plan year, the first date of change in PlanSource for that plan year (e.g. 2025-10-01 for a plan "
        "year starting 2026-01-01). Leave empty on the nightly schedule.",
    )


def plan_year_start_date_param() -> Param:
    return date_param(
        "Plan Year Start Date",
        "YYYY-MM-DD, the day BEFORE the plan year starts (2025-12-31 for a plan year starting 2026-01-01). "
        "Empty: the plan year of the last initial import.",
    )


def plan_ids_param() -> Param:
    return Param(
        None,
        type=["null", "string"],
        pattern=f"{INCLUDE_EMPLOYEES_PATTERN}|^$",
        title="Plan IDs",
        description=(
            "Optional. Recordkeeper plan ids separated by a comma and no spaces (P0001,P0002). "
            "Empty means every plan."
        ),
    )


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _run_name(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, str) and len(value) > RUN_NAME_MAX:
        raise ValueError(f"must be at most {RUN_NAME_MAX} characters")
    return value


class HoldThresholds(BaseModel):
    """The circuit breaker's thresholds (:mod:`benefits_hub.breaker`), percentages; None means the
    documented default. Each integration's DAG offers those that measure its changes."""

    model_config = ConfigDict(extra="ignore")

    hold_terminations_pct: float | None = None
    hold_changing_pct: float | None = None
    hold_row_drop_pct: float | None = None
    hold_amount_changes_pct: float | None = None
    hold_rate_changes_pct: float | None = None

    @field_validator(
        "hold_terminations_pct", "hold_changing_pct", "hold_row_drop_pct", "hold_amount_changes_pct",
        "hold_rate_changes_pct", mode="before",
    )  # fmt: skip
    @classmethod
    def _percentage(cls, value: Any) -> Any:
        value = _blank_to_none(value)
        if value is None:
            return None
        try:
            pct = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            pct = None
        if pct is None or not 0 <= pct <= 100:
            raise ValueError(f"must be a percentage from 0 to 100, got {str(value)[:20]}")
        return pct


class PlanSourceRunParams(HoldThresholds):
    """The params every PlanSource integration takes, parsed and checked."""

    model_config = ConfigDict(extra="ignore")

    integration_run_name: str | None = None
    delta: bool = True
    include_employees: tuple[str, ...] = ()
    lookback_days: int | None = None
    qualify_delta: bool = False
    dry_run: bool = False

    @field_validator("integration_run_name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        return _run_name(value)

    @field_validator("include_employees", mode="before")
    @classmethod
    def _include(cls, value: Any) -> tuple[str, ...]:
        value = _blank_to_none(value)
        if value is None:
            return ()
        if not isinstance(value, str):
            raise ValueError("must be text: person numbers separated by commas")
        if " " in value or "\t" in value:
            raise ValueError("person numbers must be separated by commas with no spaces")
        numbers = value.split(",")
        if any(not n for n in numbers):
            raise ValueError("has an empty person number (two commas in a row, or a comma at an end)")
        bad = [n for n in numbers if not re.fullmatch(r"[A-Za-z0-9_.-]+", n)]
        if bad:
            raise ValueError(f"'{bad[0][:20]}' is not a person number (letters, digits, '-', '_', '.')")
        return tuple(dict.fromkeys(numbers))  # keep order, drop repeats

    @field_validator("lookback_days", mode="before")
    @classmethod
    def _lookback(cls, value: Any) -> Any:
        value = _blank_to_none(value)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("must be a whole number of days from 1 to 31")
        try:
            days = int(value)
        except ValueError:
            raise ValueError("must be a whole number of days from 1 to 31") from None
        if not LOOKBACK_DAYS_MIN <= days <= LOOKBACK_DAYS_MAX:
            raise ValueError(f"must be from 1 to 31 days, got {days}")
        return days

    @classmethod
    def parse(cls, params: dict[str, Any]) -> PlanSourceRunParams:
        """Parse trigger params; raise :class:`ParamError` naming the first bad param."""
        return parse_params(cls, params)


class DeductionsRunParams(PlanSourceRunParams):
    """The deductions import's params: the PlanSource ones plus the two dates."""

    deduction_start_date: date | None = None
    plan_year_start_date: date | None = None

    @field_validator("deduction_start_date", "plan_year_start_date", mode="before")
    @classmethod
    def _dates(cls, value: Any, info: Any) -> date | None:
        try:
            return parse_iso_date(info.field_name, value)
        except ParamError as exc:
            raise ValueError(exc.reason) from None

    @property
    def plan_year_start(self) -> date | None:
        """The first day of the plan year (the param is the day before it)."""
        return self.plan_year_start_date + timedelta(days=1) if self.plan_year_start_date else None

    @model_validator(mode="after")
    def _dates_agree(self) -> DeductionsRunParams:
        # An initial import names its plan year, and its first change falls near that plan year. No dates
        # in the reasons: refusals are redacted, and a date reads as a birth date there.
        start, plan_year = self.deduction_start_date, self.plan_year_start
        if start is None:
            return self
        if plan_year is None:
            raise ParamError(
                "plan_year_start_date",
                "is required with Deduction Start Date: the day before the plan year starts",
            )
        ends = _one_year_after(plan_year) - timedelta(days=1)
        if start > ends:
            raise ParamError(
                "deduction_start_date",
                "is after the plan year that Plan Year Start Date names has ended; check the year",
            )
        if start < plan_year - timedelta(days=366):
            raise ParamError(
                "deduction_start_date",
                "is more than a year before the plan year that Plan Year Start Date names; check the year",
            )
        return self


def _one_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


class IJoinRunParams(HoldThresholds):
    """The iJoin syncs' params."""

    model_config = ConfigDict(extra="ignore")

    integration_run_name: str | None = None
    plan_ids: tuple[str, ...] = ()
    dry_run: bool = False

    @field_validator("integration_run_name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        return _run_name(value)

    @field_validator("plan_ids", mode="before")
    @classmethod
    def _plans(cls, value: Any) -> tuple[str, ...]:
        try:
            return PlanSourceRunParams._include(value)
        except ValueError as exc:  # the same list rule, said about plans
            raise ValueError(str(exc).replace("person number", "plan id")) from None

    @classmethod
    def parse(cls, params: dict[str, Any]) -> IJoinRunParams:
        return parse_params(cls, params)


def parse_params(model: type[_M], params: dict[str, Any]) -> _M:
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        first = exc.errors()[0]
        raised = (first.get("ctx") or {}).get("error")
        if isinstance(raised, ParamError):  # a rule over several params names the one to correct
            raise ParamError(raised.param, raised.reason) from None
        param = str(first["loc"][0]) if first["loc"] else "params"
        reason = first["msg"].removeprefix("Value error, ")
        raise ParamError(param, reason) from None


def parse_iso_date(param: str, value: Any) -> date | None:
    """``YYYY-MM-DD`` or empty; anything else is refused naming ``param``."""
    value = _blank_to_none(value)
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(DATE_PATTERN, value):
        raise ParamError(param, "must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ParamError(param, "is not a real calendar date (check the month and the day)") from None


# The pairs of systems the reconciliation compares (benefits_hub.reconciliation), by param value.
RECONCILIATION_PAIRS: dict[str, str] = {
    "hcm_plansource_demographics": "HCM ↔ PlanSource demographics",
    "plansource_hcm_deductions": "PlanSource coverages ↔ HCM payroll deductions",
    "recordkeeper_ijoin": "Recordkeeper ↔ iJoin plans and participants",
}


def as_of_date_param() -> Param:
    return date_param(
        "As-of Date",
        "Optional, YYYY-MM-DD. Payroll deductions: compare the plan year in effect on this date (the latest "
        "plan year imported that starts on or before it). Empty: today. Demographics are compared as both "
        "systems hold them now (neither keeps their history).",
    )


def reconciliation_pairs_param() -> Param:
    names = "|".join(RECONCILIATION_PAIRS)
    return Param(
        None,
        type=["null", "string"],
        pattern=f"^({names})(,({names}))*$|^$",
        title="Pairs",
        description=(
            "Optional. Which systems to compare, separated by a comma: "
            + "; ".join(f"{value} ({words})" for value, words in RECONCILIATION_PAIRS.items())
            + ". Empty means every pair."
        ),
    )


class ReconciliationParams(BaseModel):
    """The reconciliation's params, parsed and checked."""

    model_config = ConfigDict(extra="ignore")

    integration_run_name: str | None = None
    pairs: tuple[str, ...] = tuple(RECONCILIATION_PAIRS)
    include_employees: tuple[str, ...] = ()
    plan_ids: tuple[str, ...] = ()
    as_of_date: date | None = None

    @field_validator("as_of_date", mode="before")
    @classmethod
    def _as_of(cls, value: Any) -> date | None:
        return parse_iso_date("as_of_date", value)

    @field_validator("integration_run_name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        return _run_name(value)

    @field_validator("include_employees", mode="before")
    @classmethod
    def _include(cls, value: Any) -> tuple[str, ...]:
        return PlanSourceRunParams._include(value)

    @field_validator("plan_ids", mode="before")
    @classmethod
    def _plans(cls, value: Any) -> tuple[str, ...]:
        return IJoinRunParams._plans(value)

    @field_validator("pairs", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> tuple[str, ...]:
        value = _blank_to_none(value)
        if value is None:
            return tuple(RECONCILIATION_PAIRS)
        names = [name.strip() for name in str(value).split(",")]
        unknown = [name for name in names if name not in RECONCILIATION_PAIRS]
        if unknown:
            raise ValueError(
                f"'{unknown[0]}' is not a pair the hub compares: use " + ", ".join(RECONCILIATION_PAIRS)
            )
        return tuple(dict.fromkeys(names))

    @classmethod
    def parse(cls, params: dict[str, Any]) -> ReconciliationParams:
        return parse_params(cls, params)
