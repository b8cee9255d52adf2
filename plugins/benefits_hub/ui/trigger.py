"""The hub's own trigger form (Run Integration and Re-Run), as pure functions.

Why not only Airflow's form: it clamps an out-of-range number silently, answers a bad value with a JSON
schema dump, and unpauses the DAG even when the trigger is refused. This form is built from the same
``Param`` schemas, checks a submit with the hub's own rules first (the integration's params model, the
same one its ``validate`` stage parses) and then the JSON schema, and says what is wrong next to each
field in the clerk's words. A refused submit changes nothing: no run, no unpause.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from benefits_hub.params import (
    DeductionsRunParams,
    IJoinRunParams,
    ParamError,
    PlanSourceRunParams,
    ReconciliationParams,
)

#: The hub's params model of each integration (what its validate stage parses).
PARAM_MODELS: dict[str, type[BaseModel]] = {
    "plansource_hcm_demographic_export": PlanSourceRunParams,
    "plansource_deductions_import": DeductionsRunParams,
    "ijoin_plan_sync": IJoinRunParams,
    "ijoin_participant_sync": IJoinRunParams,
    "ijoin_plan_repair": IJoinRunParams,
    "ijoin_participant_repair": IJoinRunParams,
    "hub_reconciliation": ReconciliationParams,
}
#: An integration set's members: param name -> the member's params model.
SET_MEMBERS: dict[str, dict[str, type[BaseModel]]] = {
    "plansource_benefits_set": {"export": PlanSourceRunParams, "import": DeductionsRunParams},
}
RERUN_SUFFIX = re.compile(r"\s*\(re-run \d+\)$")
RUN_NAME = "integration_run_name"


class FieldSpec(BaseModel):
    """One param as the form shows it."""

    name: str
    title: str
    description: str = ""
    kind: str  # boolean | integer | number | object | text
    nullable: bool = True
    value: str = ""  # what the input holds
    schema_: dict[str, Any] = Field(default_factory=dict)
    problem: str | None = None


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type", "string")
    return list(kind) if isinstance(kind, list) else [kind]


def _kind(schema: Mapping[str, Any]) -> str:
    types = _types(schema)
    for kind in ("boolean", "integer", "number", "object"):
        if kind in types:
            return kind
    return "text"


def _as_input(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "boolean":
        return "true" if value is True or str(value).lower() == "true" else "false"
    if kind == "object":
        return json.dumps(value, indent=1)
    if kind == "number" and isinstance(value, int | float):
        return f"{value:g}"  # a threshold of 2.0 reads "2"
    return str(value)


def form_fields(params: Mapping[str, Any], values: Mapping[str, Any]) -> list[FieldSpec]:
    """The form's fields from the DAG's params (name -> (default, JSON schema)), filled with
    ``values`` where given (a re-run's conf) and the defaults elsewhere."""
    fields = []
    for name, (default, schema) in params.items():
        kind = _kind(schema)
        value = values.get(name, default)
        fields.append(
            FieldSpec(
                name=name,
                title=str(schema.get("title") or name.replace("_", " ").capitalize()),
                description=str(schema.get("description") or ""),
                kind=kind,
                nullable="null" in _types(schema),
                value=_as_input(kind, value),
                schema_=dict(schema),
            )
        )
    return fields


def rerun_name(old_name: str, existing: list[str]) -> str:
    """``<old name> (re-run N)``: N is one more than the re-runs of that name so far."""
    base = RERUN_SUFFIX.sub("", old_name).strip()
    pattern = re.compile(re.escape(base) + r" \(re-run (\d+)\)$")
    taken = [int(m.group(1)) for name in existing if (m := pattern.match(name))]
    return f"{base} (re-run {max(taken, default=0) + 1})"


def _parse(spec: FieldSpec, raw: str) -> Any:
    """The typed value of one input; a value that does not parse is kept as text for the checks."""
    text = raw.strip()
    if text == "" and spec.kind != "boolean":
        return None if spec.nullable else ""
    if spec.kind == "boolean":
        return text.lower() in ("true", "on", "yes", "1")
    if spec.kind == "integer":
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else text
    if spec.kind == "number":
        return float(text) if re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text) else text
    if spec.kind == "object":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return raw if spec.name == RUN_NAME else text


def _model_problems(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, str]:
    """Every param the hub's model refuses, with its reason (not just the first)."""
    try:
        model.model_validate(dict(values))
    except ParamError as exc:
        return {exc.param: exc.reason}
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors():
            raised = (error.get("ctx") or {}).get("error")
            if isinstance(raised, ParamError):
                problems.setdefault(raised.param, raised.reason)
                continue
            param = str(error["loc"][0]) if error["loc"] else "params"
            problems.setdefault(param, str(error["msg"]).removeprefix("Value error, "))
        return problems
    return {}


def _schema_problem(spec: FieldSpec, value: Any) -> str | None:
    """The JSON schema's verdict in words (Airflow checks the same schema when the run is created)."""
    import jsonschema

    schema = spec.schema_
    try:
        jsonschema.validate(value, {k: v for k, v in schema.items() if k not in ("title", "description")})
    except jsonschema.ValidationError as exc:
        minimum, maximum = schema.get("minimum"), schema.get("maximum")
        if exc.validator in ("minimum", "maximum") and minimum is not None and maximum is not None:
            return f"must be from {minimum} to {maximum}; you entered {value}. Nothing was changed."
        if exc.validator == "type":
            wanted = {"integer": "a whole number", "number": "a number", "object": "JSON in braces {...}",
                      "string": "text"}  # fmt: skip
            kind = next((wanted[t] for t in _types(schema) if t in wanted), "a value of another kind")
            return f"must be {kind}."
        if exc.validator == "enum":
            return "must be one of: " + ", ".join(str(v) for v in schema.get("enum") or [])
        if exc.validator == "maxLength":
            return f"must be at most {schema.get('maxLength')} characters."
        return f"is not in the expected form. {spec.description}".strip()
    return None


def check_submission(dag_id: str, fields: list[FieldSpec], form: Mapping[str, str]) -> dict[str, Any] | None:
    """The run's conf, or None when a field was refused (each refused field has its ``problem``)."""
    conf: dict[str, Any] = {}
    for spec in fields:
        raw = str(form.get(spec.name, "false" if spec.kind == "boolean" else ""))
        spec.value = raw if spec.kind != "boolean" else _as_input("boolean", _parse(spec, raw))
        conf[spec.name] = _parse(spec, raw)
    problems: dict[str, str] = {}
    model = PARAM_MODELS.get(dag_id)
    if model is not None:
        problems.update(_model_problems(model, conf))
    for member, member_model in SET_MEMBERS.get(dag_id, {}).items():
        value = conf.get(member)
        if isinstance(value, dict):
            for param, reason in _model_problems(member_model, value).items():
                problems.setdefault(member, f"{param}: {reason}")
    for spec in fields:
        if spec.name not in problems:
            found = _schema_problem(spec, conf[spec.name])
            if found:
                problems[spec.name] = found
    for spec in fields:
        spec.problem = problems.get(spec.name)
    return None if problems else conf


def dag_params(dag: Any) -> dict[str, tuple[Any, dict[str, Any]]]:
    """A (serialized) DAG's params as name -> (default, JSON schema)."""
    found: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name in dag.params:
        param = dag.params.get_param(name)
        value = param.value
        # An unset default is a sentinel object, not JSON: the form shows it as empty.
        found[name] = (
            value if value is None or isinstance(value, str | int | float | bool | dict | list) else None,
            dict(param.schema or {}),
        )
        if param.description and "description" not in found[name][1]:
            found[name][1]["description"] = param.description
    return found
