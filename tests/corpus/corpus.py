"""The bad-input corpus: cases kept as data (the YAML files beside this module) and how each is checked.

Every case has an ``id``, ``wrong`` (what is wrong, in a sentence), its input, and ``expect``:

- ``error_row``: the record ends as an error row naming ``field`` and ``rule``, whose reason contains
  ``reason`` (a fragment a payroll clerk reads);
- ``refused_trigger``: the run is refused before any data moves, naming ``param`` (``layer: schema`` at
  trigger time by the DAG's JSON schema, ``layer: validate`` by the validate stage);
- ``refused_run``: a file or an answer the run depends on cannot be used; the stage fails with ``reason``;
- ``accepted`` / ``normalised``: odd but valid; ``field`` then holds ``value`` after mapping.

:func:`observe` puts a case through the hub's real rule functions and reports what happened as an
:class:`Observed`; :func:`check` compares that with ``expect``.
"""

from __future__ import annotations

import copy
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

CORPUS_DIR = Path(__file__).resolve().parent
REPO = CORPUS_DIR.parents[1]
OUTCOMES = ("error_row", "refused_trigger", "refused_run", "accepted", "normalised")
DROP = "~drop"
SUM_100 = "allocations:sum_100"  # the participant sync's rule name for any allocation problem
# What an explanation must never look like: a Python exception's own words instead of a reason.
RAW_EXCEPTION = re.compile(r"Traceback|JSONDecodeError|KeyError|TypeError|InvalidOperation|decimal\.")


@dataclass(frozen=True)
class Case:
    source: str
    id: str
    data: dict[str, Any]
    file: dict[str, Any]  # the whole case file (its base record, ...)

    @property
    def expect(self) -> dict[str, Any]:
        return self.data["expect"]

    @property
    def outcome(self) -> str:
        return self.expect["outcome"]

    def __str__(self) -> str:
        return f"{self.source}/{self.id}"


def load_cases() -> list[Case]:
    """Every case of every ``*.yaml`` file here, in file order."""
    cases: list[Case] = []
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for data in document["cases"]:
            cases.append(Case(source=document["source"], id=data["id"], data=data, file=document))
    return cases


def resolve(value: Any) -> Any:
    """``{repeat: "A", times: 10000}`` becomes the 10,000-character string; the rest is copied."""
    if isinstance(value, dict):
        if set(value) == {"repeat", "times"}:
            return str(value["repeat"]) * int(value["times"])
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def with_overrides(base: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    record = copy.deepcopy(base)
    for key, value in resolve(overrides or {}).items():
        if value == DROP:
            record.pop(key, None)
        else:
            record[key] = value
    return record


@dataclass
class Observed:
    outcome: str
    rows: list[Any] = field(default_factory=list)  # ErrorRow
    values: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    param: str | None = None
    message: str = ""  # a refusal's message
    schema_message: str = ""  # the JSON schema's refusal, for a param case
    extra: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# -- sources ------------------------------------------------------------------------------------------


def observe_hcm(case: Case) -> Observed:
    from benefits_hub.demographics.rules import (
        CrossReferences,
        duplicate_problem,
        identity_problems,
        map_subscriber,
    )

    employee = with_overrides(case.file["base"], case.data.get("input"))
    if case.data.get("duplicate_rows"):
        row = duplicate_problem(employee["person_number"], int(case.data["duplicate_rows"]))
        return Observed("error_row", rows=[row])
    mapped = map_subscriber(employee, CrossReferences.load())
    rows = mapped.errors + identity_problems(
        mapped.person_number,
        employee.get("plansource_subscriber_id"),
        employee.get("plansource_username"),
        mapped.fields["ssn"],
        case.data.get("plansource"),
    )
    return Observed("error_row" if rows else "accepted", rows=rows, values=dict(mapped.fields))


def observe_coverage(case: Case) -> Observed:
    from benefits_hub.deductions.rules import deduction_codes, map_coverage

    base = case.file["base"]
    if "records" in case.data:
        return _observe_duplicates([with_overrides(base, r) for r in case.data["records"]])
    coverage = with_overrides(base, case.data.get("input"))
    mapped = map_coverage(coverage, deduction_codes(), known_person=case.data.get("known_person", True))
    values = {k: _plain(v) for k, v in (mapped.row or {}).items()}
    return Observed("error_row" if mapped.errors else "accepted", rows=mapped.errors, values=values)


def _observe_duplicates(coverages: list[dict[str, Any]]) -> Observed:
    """A batch holding the same deduction twice, loaded by the real upsert into a real (in-memory) HCM."""
    from benefits_hub.deductions.rules import DEDUCTION_COLUMNS, deduction_codes, map_coverage
    from benefits_hub.deductions.writer import DeductionWriter

    mapped = [map_coverage(c, deduction_codes(), known_person=True) for c in coverages]
    errors = [e for m in mapped for e in m.errors]
    if errors:
        return Observed("error_row", rows=errors)
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript((REPO / "include" / "sql" / "hcm_schema.sql").read_text())
        DeductionWriter(conn, "?", True, "corpus").apply([m.row for m in mapped if m.row])
        loaded = [
            dict(zip(DEDUCTION_COLUMNS, values, strict=True))
            for values in conn.execute(f"SELECT {', '.join(DEDUCTION_COLUMNS)} FROM hcm_payroll_deduction")
        ]
    finally:
        conn.close()
    values = {k: _plain(v) for k, v in loaded[0].items()} if len(loaded) == 1 else {}
    if "employee_amount" in values:
        values["employee_amount"] = f"{Decimal(str(values['employee_amount'])):.2f}"
    return Observed("accepted", values=values, extra={"rows": len(loaded)})


def observe_recordkeeper(case: Case) -> Observed:
    from benefits_hub.ijoin.rules import allocation_problem, annual_salary, pay_frequency, plan_problems
    from benefits_hub.ijoin.writeback import election_problems
    from benefits_hub.models import ErrorRow

    check = case.data["check"]
    given = resolve(case.data.get("input"))
    if check == "allocations":
        # As the participant sync writes it (benefits_hub.ijoin.participant_sync.ParticipantSync.transform).
        problem = allocation_problem(given)
        key = "P0001/P0001-000001"  # as the participant sync names it
        found = [problem] if problem else []
        rows = [ErrorRow(record_key=key, field="allocations", rule=SUM_100, reason=p) for p in found]
        return Observed("error_row" if rows else "accepted", rows=rows)
    if check == "plan":
        plan = with_overrides(case.file["plan_base"], given)
        funds = resolve(case.data.get("funds") or case.file["funds_base"])
        rows = [
            ErrorRow(record_key=plan["plan_id"], field="plan", rule="ijoin:plan_validation", reason=p)
            for p in plan_problems(plan, funds)
        ]
        return Observed("error_row" if rows else "accepted", rows=rows)
    if check == "salary":
        salary, source = annual_salary(given)
        return Observed("accepted", values={"annual_salary": str(salary)}, warnings=[source])
    if check == "pay":
        name, warning = pay_frequency(case.data.get("plan_code"), given, date(2026, 3, 31))
        return Observed("accepted", values={"pay_frequency": name}, warnings=[warning] if warning else [])
    if check == "election":
        rows = [
            ErrorRow(record_key="EL900001", field=str(given.get("kind")), rule="election", reason=p)
            for p in election_problems(given)
        ]
        return Observed("error_row" if rows else "accepted", rows=rows)
    raise ValueError(f"{case}: unknown check {check!r}")


def observe_xref(case: Case, folder: Path) -> Observed:
    import shutil

    from benefits_hub.xref import CrossReferenceError, load_table, xref_dir

    folder.mkdir(parents=True, exist_ok=True)
    for table in xref_dir().glob("*.csv"):
        shutil.copy(table, folder / table.name)
    target = folder / f"{case.data['table']}.csv"
    if case.data.get("missing"):
        target.unlink()
    else:
        target.write_bytes(case.data["content"].encode(case.data["encoding"]))
    key = case.data.get("key", "hcm_code")
    try:
        table = load_table(case.data["table"], str(folder), key)
    except CrossReferenceError as exc:
        return Observed("refused_run", message=str(exc))
    value = table.lookup(case.data["code"], case.data.get("column", "plansource_code"))
    return Observed("accepted", values={"value": value})


class _VendorHandler(BaseHTTPRequestHandler):
    """PlanSource's token endpoint, and one fixed answer for everything else."""

    status = 200
    body = b""

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(200, json.dumps({"access_token": "corpus", "expires_in": 300}).encode())

    def do_GET(self) -> None:
        self._send(self.status, self.body)

    def log_message(self, *args: Any) -> None:  # quiet
        return


@contextmanager
def vendor_server(status: int, body: bytes) -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 answering ``body``; yields its port; stopped on exit."""
    handler = type("Handler", (_VendorHandler,), {"status": status, "body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def observe_page(case: Case, folder: Path, set_env: Any) -> Observed:
    from benefits_hub import codec
    from benefits_hub.hooks.plansource import PlanSourceHook
    from benefits_hub.hooks.vendor_api import VendorApiError
    from benefits_hub.staging import StagedFileDamaged, StagingArea

    if "staged_file" in case.data:
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / "payroll_coverages.pages.jsonl"
        staged.write_text(case.data["staged_file"], encoding="utf-8")
        try:
            pages = list(StagingArea.read_records({"path": staged.as_uri()}))
        except StagedFileDamaged as exc:
            return Observed("refused_run", message=str(exc))
        return Observed("accepted", values={"value": len(pages)})
    with vendor_server(int(case.data["status"]), case.data["body"].encode("utf-8")) as port:
        connection = {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
        set_env("AIRFLOW_CONN_CORPUS_PLANSOURCE", json.dumps({**connection, "login": "id", "password": "pw"}))
        hook = PlanSourceHook("corpus_plansource", request_attempts=2, timeout=10)
        try:
            if case.data.get("listing") == "subscribers":  # the export's listing, staged as it came
                lines = list(hook.iter_subscriber_lines())
            else:
                pages = list(hook.iter_payroll_coverage_pages("2026-01-01", "2026-01-31"))
        except VendorApiError as exc:
            return Observed("refused_run", message=str(exc))
    if case.data.get("listing") == "subscribers":
        # Each line one whole subscriber, the number it is staged under its own.
        staged = [codec.loads(line) for _number, line in lines]
        assert [s["employee_number"] for s in staged] == [number for number, _line in lines]
        return Observed("accepted", values={"value": len(staged)})
    records = sum(len(p.get("payroll_coverages") or []) for p in pages)
    return Observed("accepted", values={"value": records})


def observe_params(case: Case, dag: Any, conf: dict[str, Any], model: Any | None) -> Observed:
    """The DAG's JSON schema at trigger time, then the validate stage's parse of the (member's) params."""
    from airflow.sdk.exceptions import ParamValidationError

    from benefits_hub.params import ParamError, parse_params

    schema_message = ""
    params = copy.deepcopy(dag.params)
    try:
        params.update(conf)
        params.validate()
    except ParamValidationError as exc:
        schema_message = str(exc)
    member = case.data.get("member")
    stage_params = conf.get(member) if member else conf
    if model is None:
        if schema_message:
            param = re.search(r"Invalid input for param (\w+)", schema_message)
            return Observed(
                "refused_trigger", param=param[1] if param else None, schema_message=schema_message
            )
        return Observed("accepted")
    model_used = {"model": True}
    try:
        parse_params(model, stage_params if isinstance(stage_params, dict) else {})
    except ParamError as exc:
        return Observed(
            "refused_trigger",
            param=exc.param,
            message=exc.reason,
            schema_message=schema_message,
            extra=model_used,
        )
    return Observed(
        "refused_trigger" if schema_message else "accepted", schema_message=schema_message, extra=model_used
    )


def observe_correction(case: Case, dag: Any) -> Observed:
    from benefits_hub.deductions.resubmit import ResubmitParams
    from benefits_hub.deductions.rules import deduction_codes, map_coverage

    if "params" in case.data:
        return observe_params(case, dag, resolve(case.data["params"]), ResubmitParams)
    coverage = {**case.file["record"], **resolve(case.data["correct"])}
    mapped = map_coverage(coverage, deduction_codes(), known_person=True)
    values = {k: _plain(v) for k, v in (mapped.row or {}).items()}
    return Observed("error_row" if mapped.errors else "accepted", rows=mapped.errors, values=values)


# -- the comparison -------------------------------------------------------------------------------------


def readable(reason: str) -> bool:
    """A clerk's sentence: starts with a capital letter, ends with a full stop, no exception's own words."""
    return (
        bool(reason)
        and reason[0].isupper()
        and reason.rstrip().endswith(".")
        and not RAW_EXCEPTION.search(reason)
    )


def check(case: Case, seen: Observed) -> None:
    """Assert that what happened is what the case expects; the message says which case and how."""
    expect = case.expect
    outcome = expect["outcome"]
    assert outcome in OUTCOMES, f"{case}: unknown outcome {outcome!r}"
    if outcome == "error_row":
        assert seen.rows, f"{case}: expected an error row, the record was accepted ({seen.values})"
        matching = [r for r in seen.rows if r.field == expect["field"] and r.rule == expect["rule"]]
        assert matching, f"{case}: no error row for {expect['field']}/{expect['rule']}: {seen.rows}"
        row = matching[0]
        assert expect["reason"] in row.reason, f"{case}: reason {row.reason!r} lacks {expect['reason']!r}"
        for each in seen.rows:
            assert readable(each.reason), f"{case}: not a clerk's sentence: {each.reason!r}"
            assert len(each.value) <= 300, f"{case}: error value not cut short"
            if each.field == "ssn" and each.value:
                assert re.fullmatch(r"\*\*\*-\*\*-(\*{4}|.{4})", each.value), f"{case}: SSN not masked"
            if each.field in ("birth_date", "birthdate") and each.value:
                assert each.value == "****-**-**", f"{case}: birth date not masked"
        return
    if outcome == "refused_trigger":
        layer = expect["layer"]
        assert seen.outcome == "refused_trigger", f"{case}: the params were accepted"
        if layer == "schema":
            assert f"Invalid input for param {expect['param']}" in seen.schema_message, (
                f"{case}: the trigger-time schema did not refuse {expect['param']}: {seen.schema_message!r}"
            )
        else:
            assert not seen.schema_message, f"{case}: refused by the schema, not the validate stage"
        if seen.extra.get("model"):
            # The validate stage refuses it too (an integration set's members are checked only there).
            assert seen.param == expect["param"], (
                f"{case}: refused naming {seen.param}, not {expect['param']}"
            )
            if "reason" in expect:
                assert expect["reason"] in seen.message, (
                    f"{case}: {seen.message!r} lacks {expect['reason']!r}"
                )
        return
    if outcome == "refused_run":
        assert seen.outcome == "refused_run", f"{case}: expected a refusal, got {seen}"
        assert expect["reason"] in seen.message, f"{case}: {seen.message!r} lacks {expect['reason']!r}"
        assert not RAW_EXCEPTION.search(seen.message), f"{case}: raw exception text: {seen.message!r}"
        return
    # accepted / normalised: no error, and the field holds the expected value
    assert seen.outcome == "accepted", (
        f"{case}: expected {outcome}, got {seen.outcome}: {seen.rows or seen.message}"
    )
    if "field" in expect:
        assert seen.values.get(expect["field"]) == expect.get("value"), (
            f"{case}: {expect['field']} is {seen.values.get(expect['field'])!r}, not {expect.get('value')!r}"
        )
    elif "value" in expect:
        assert seen.values.get("value") == expect["value"], f"{case}: got {seen.values}"
    if "rows" in expect:
        assert seen.extra.get("rows") == expect["rows"], f"{case}: {seen.extra.get('rows')} rows loaded"
    if "warning" in expect:
        assert any(expect["warning"] in w for w in seen.warnings), f"{case}: warnings {seen.warnings}"
