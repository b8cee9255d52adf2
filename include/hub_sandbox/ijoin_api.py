"""An iJoin-like API (plans with active/draft versions, activation, participants, activity, elections).

No public iJoin API exists (``/work/shared/vendors/ijoin-relius.md``): this one is shaped by iJoin's help
pages and answers in the PlanSource sandbox's envelope ``{"status", "errors", "data"}``. Auth is a static API
key (``Authorization: Bearer <key>``). State lives in a SQLite file. Error messages name fields, never
values (no SSN ever comes back in an error). Sandbox-only admin routes live under ``/sandbox/`` and need no
key: the server binds to loopback only.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from hub_sandbox import recordkeeper as rk
from hub_sandbox.vendor_app import ApiError, FaultSwitch, envelope, failure, install_error_handlers

API_PREFIX = "/api/v1"
MAX_PER_PAGE = 500
CONTACT_TYPES = rk.CONTACT_TYPES
VERSION_FIELDS: tuple[str, ...] = (
    "plan_name",
    "external_plan_id",
    "employer_name",
    "employer_ein",
    "phone_contact",
    "contacts",
    "match_tiers",
    "funds",
    "default_investment",
)
FUND_KEYS = ("fund_id", "ticker", "fund_name", "asset_class", "is_default", "is_open")
_STRING_FIELDS = ("plan_name", "external_plan_id", "employer_name", "employer_ein", "phone_contact",
                  "default_investment")  # fmt: skip
PARTICIPANT_FIELDS: tuple[str, ...] = (
    "participant_id",
    "ssn",
    "first_name",
    "last_name",
    "birth_date",
    "hire_date",
    "termination_date",
    "status",
    "email",
    "pay_frequency",
    "annual_salary",
    "salary_source",
    "balances",
    "allocations",
    "contribution_rates",
    "sync_status",
    "sync_messages",
)
PARTICIPANT_STATUSES = ("A", "T", "L", "R")
# Codes or names; a variable plan's 'V' must be resolved per participant (null = could not be resolved).
PAY_FREQUENCIES = ("W", "B", "S", "M", "Weekly", "Biweekly", "Semi-Monthly", "Monthly")
SYNC_STATUSES = ("Synchronized", "Synchronized with warnings", "Error")
ACTIVITY_TYPES = ("Plan Sync", "Participant Sync")
ELECTION_KINDS = ("contribution_rate", "allocation")
RATE_FIELDS = ("pretax_pct", "roth_pct", "aftertax_pct")
IJOIN_PHONE = "(800) 555-{k:04d}"  # iJoin's own phone_contact (flagged do-not-override) for plan k

SCHEMA = """
CREATE TABLE IF NOT EXISTS ij_plan (
    plan_id TEXT PRIMARY KEY,
    plan_name TEXT,
    status TEXT NOT NULL,                 -- setup | active
    created_at TEXT NOT NULL,
    do_not_override TEXT NOT NULL,        -- JSON list of field names
    default_investment_never INTEGER NOT NULL,
    last_sync TEXT,
    active_version_id TEXT,
    draft_version_id TEXT
);
CREATE INDEX IF NOT EXISTS ix_ij_plan_created_at ON ij_plan (created_at);
CREATE TABLE IF NOT EXISTS ij_plan_version (
    version_id TEXT PRIMARY KEY, plan_id TEXT NOT NULL, created_at TEXT NOT NULL, activated_at TEXT,
    body TEXT NOT NULL                    -- JSON of the VERSION_FIELDS
);
-- Every Plan Sync: the names of the fields sent (never values) and what iJoin did with them.
CREATE TABLE IF NOT EXISTS ij_plan_sync (
    seq INTEGER PRIMARY KEY, plan_id TEXT NOT NULL, fields TEXT NOT NULL, result TEXT NOT NULL,
    version_id TEXT, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ij_participant (
    plan_id TEXT NOT NULL, participant_id TEXT NOT NULL, body TEXT NOT NULL, sync_status TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (plan_id, participant_id)
);
CREATE TABLE IF NOT EXISTS ij_activity (
    id INTEGER PRIMARY KEY, type TEXT NOT NULL, plan_id TEXT, status TEXT NOT NULL, started_at TEXT,
    finished_at TEXT, errors TEXT NOT NULL, payload_url TEXT, recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ij_election (
    election_id TEXT PRIMARY KEY, plan_id TEXT NOT NULL, participant_id TEXT NOT NULL, kind TEXT NOT NULL,
    contribution_rates TEXT, allocations TEXT, status TEXT NOT NULL, created_at TEXT NOT NULL, sent_at TEXT
);
CREATE INDEX IF NOT EXISTS ix_ij_election_status ON ij_election (status, created_at);
CREATE TABLE IF NOT EXISTS request_log (
    seq INTEGER PRIMARY KEY, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
    at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def connect_state(state_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(state_path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


# ---------------------------------------------------------------------------------------------- errors


# ---------------------------------------------------------------------------------------------- validation

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SSN_RE = re.compile(r"^\d{3}-?\d{2}-?\d{4}$")


def _bad(message: str) -> ApiError:
    return ApiError(400, message, "bad_request")


def _number(name: str, value: Any, *, nullable: bool = False) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool):
        raise _bad(f"{name} must be a number.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(f"{name} must be a number.") from None
    if not math.isfinite(number):
        raise _bad(f"{name} must be a number.")
    return round(number, 3)


def _string(name: str, value: Any, *, nullable: bool = True) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string.")
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise _bad(f"{name} must be true or false.")


def _date(name: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str) or not _DATE_RE.match(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise _bad(f"{name} is not a valid YYYY-MM-DD date.") from None
    return value


def _object(name: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{name} must be an object.")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise _bad(f"Unknown field(s) in {name}: {', '.join(unknown)}.")
    return value


def _list(name: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(f"{name} must be a list.")
    return value


def parse_timestamp(name: str, value: str | None) -> str | None:
    """An ISO timestamp (naive = UTC) as 'YYYY-MM-DD HH:MM:SS' UTC, the form this API stores."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"{name} is not a valid ISO timestamp.") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def clean_version_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise a (partial) plan version: numbers as floats, funds in fund_id order."""
    unknown = sorted(set(body) - set(VERSION_FIELDS))
    if unknown:
        raise _bad(f"Unknown field(s): {', '.join(unknown)}.")
    out: dict[str, Any] = {}
    for key in _STRING_FIELDS:
        if key in body:
            out[key] = _string(key, body[key])
    if "contacts" in body:
        contacts = _object("contacts", body["contacts"] or {}, CONTACT_TYPES)
        out["contacts"] = {}
        for ctype, contact in sorted(contacts.items()):
            c = _object(f"contacts.{ctype}", contact, ("name", "email", "phone"))
            out["contacts"][ctype] = {
                f: _string(f"contacts.{ctype}.{f}", c.get(f)) for f in ("name", "email", "phone")
            }
    if "match_tiers" in body:
        tiers = []
        for n, tier in enumerate(_list("match_tiers", body["match_tiers"] or [])):
            t = _object(f"match_tiers[{n}]", tier, ("contribution_pct", "match_pct"))
            tiers.append(
                {
                    "contribution_pct": _number(
                        f"match_tiers[{n}].contribution_pct", t.get("contribution_pct")
                    ),
                    "match_pct": _number(f"match_tiers[{n}].match_pct", t.get("match_pct")),
                }
            )
        out["match_tiers"] = tiers
    if "funds" in body:
        funds: dict[str, dict[str, Any]] = {}
        for n, fund in enumerate(_list("funds", body["funds"] or [])):
            f = _object(f"funds[{n}]", fund, FUND_KEYS)
            fid = f.get("fund_id")
            if not isinstance(fid, str) or not fid:
                raise _bad(f"funds[{n}].fund_id is required.")
            if fid in funds:
                raise _bad(f"funds[{n}].fund_id is a duplicate.")
            funds[fid] = {
                "fund_id": fid,
                "ticker": _string(f"funds[{n}].ticker", f.get("ticker")),
                "fund_name": _string(f"funds[{n}].fund_name", f.get("fund_name")),
                "asset_class": _string(f"funds[{n}].asset_class", f.get("asset_class")),
                "is_default": _bool(f"funds[{n}].is_default", f.get("is_default", False)),
                "is_open": _bool(f"funds[{n}].is_open", f.get("is_open", True)),
            }
        out["funds"] = [funds[k] for k in sorted(funds)]
    return out


def empty_version(plan_name: str | None) -> dict[str, Any]:
    return {
        "plan_name": plan_name,
        "external_plan_id": None,
        "employer_name": None,
        "employer_ein": None,
        "phone_contact": None,
        "contacts": {},
        "match_tiers": [],
        "funds": [],
        "default_investment": None,
    }


def lineup(version: dict[str, Any]) -> set[tuple[Any, ...]]:
    """What makes a line-up change: the set of funds with their ticker and open flag."""
    return {(f["fund_id"], f["ticker"], f["is_open"]) for f in version.get("funds") or []}


def activation_errors(version: dict[str, Any]) -> list[str]:
    errors = []
    if not version.get("employer_ein"):
        errors.append("Employer EIN is missing")
    funds = version.get("funds") or []
    if not funds:
        errors.append("The fund line-up is empty")
    errors += [f"Fund {f['fund_id']} has no ticker" for f in funds if f["is_open"] and not f["ticker"]]
    default = version.get("default_investment")
    if not default:
        errors.append("Default investment is not set")
    elif default not in {f["fund_id"] for f in funds if f["is_open"]}:
        errors.append(f"Default investment {default} is not an open fund of the line-up")
    return errors


def _ordered(record: dict[str, Any]) -> dict[str, Any]:
    """A stored participant with its fields in PARTICIPANT_FIELDS order."""
    return {k: record[k] for k in PARTICIPANT_FIELDS if k in record}


def clean_participant(rec: dict[str, Any], fund_ids: set[str]) -> dict[str, Any]:
    """Validate one participant record (partial: only the fields sent). Messages name fields, not values."""
    unknown = sorted(set(rec) - set(PARTICIPANT_FIELDS))
    if unknown:
        raise _bad(f"Unknown field(s): {', '.join(unknown)}.")
    out: dict[str, Any] = {}
    for key, value in rec.items():
        if key in ("participant_id", "first_name", "last_name", "email", "salary_source"):
            out[key] = _string(key, value, nullable=key in ("email", "salary_source"))
        elif key == "ssn":
            if value is not None and (not isinstance(value, str) or not _SSN_RE.match(value)):
                raise _bad("ssn is not a valid 9-digit social security number.")
            out[key] = value.replace("-", "") if value else None
        elif key in ("birth_date", "hire_date", "termination_date"):
            out[key] = _date(key, value)
        elif key == "status":
            if value not in PARTICIPANT_STATUSES:
                raise _bad(f"status must be one of {', '.join(PARTICIPANT_STATUSES)}.")
            out[key] = value
        elif key == "pay_frequency":
            if value is not None and value not in PAY_FREQUENCIES:
                raise _bad(f"pay_frequency must be one of {', '.join(PAY_FREQUENCIES)} (a variable plan's V "
                           "is resolved per participant from payroll).")  # fmt: skip
            out[key] = value
        elif key == "annual_salary":
            salary = _number(key, value)
            if salary is None or salary < 0:
                raise _bad("annual_salary must not be negative.")
            out[key] = salary
        elif key == "balances":
            rows = []
            for n, b in enumerate(_list(key, value)):
                b = _object(f"balances[{n}]", b, ("fund_id", "money_source", "balance", "as_of"))
                if b.get("fund_id") not in fund_ids:
                    raise _bad(f"balances[{n}].fund_id is not a fund of the plan's line-up.")
                if b.get("money_source") not in rk.MONEY_SOURCES:
                    raise _bad(f"balances[{n}].money_source must be one of {', '.join(rk.MONEY_SOURCES)}.")
                rows.append(
                    {
                        "fund_id": b["fund_id"],
                        "money_source": b["money_source"],
                        "balance": _number(f"balances[{n}].balance", b.get("balance")),
                        "as_of": _date(f"balances[{n}].as_of", b.get("as_of")),
                    }
                )
            out[key] = sorted(rows, key=lambda r: (r["fund_id"], r["money_source"]))
        elif key == "allocations":
            rows = []
            for n, a in enumerate(_list(key, value)):
                a = _object(f"allocations[{n}]", a, ("fund_id", "pct"))
                if a.get("fund_id") not in fund_ids:
                    raise _bad(f"allocations[{n}].fund_id is not a fund of the plan's line-up.")
                rows.append({"fund_id": a["fund_id"], "pct": _number(f"allocations[{n}].pct", a.get("pct"))})
            out[key] = sorted(rows, key=lambda r: r["fund_id"])
        elif key == "contribution_rates":
            if value is None:
                out[key] = None
                continue
            rates = _object(key, value, RATE_FIELDS)
            out[key] = {f: _number(f"contribution_rates.{f}", rates.get(f, 0)) for f in RATE_FIELDS}
        elif key == "sync_status":
            if value not in SYNC_STATUSES:
                raise _bad(f"sync_status must be one of {', '.join(SYNC_STATUSES)}.")
            out[key] = value
        elif key == "sync_messages":
            messages = _list(key, value)
            if not all(isinstance(m, str) for m in messages):
                raise _bad("sync_messages must be a list of strings.")
            out[key] = messages
    if not out.get("participant_id"):
        raise _bad("participant_id is required.")
    return out


def clean_election(item: Any, n: int) -> dict[str, Any]:
    allowed = ("election_id", "plan_id", "participant_id", "kind", "contribution_rates", "allocations")
    e = _object(f"elections[{n}]", item, allowed)
    for key in ("plan_id", "participant_id"):
        if not isinstance(e.get(key), str) or not e[key]:
            raise _bad(f"elections[{n}].{key} is required.")
    kind = e.get("kind")
    if kind not in ELECTION_KINDS:
        raise _bad(f"elections[{n}].kind must be one of {', '.join(ELECTION_KINDS)}.")
    rates, allocations = None, None
    if kind == "contribution_rate":
        r = _object(f"elections[{n}].contribution_rates", e.get("contribution_rates"), RATE_FIELDS)
        rates = {f: _number(f"elections[{n}].contribution_rates.{f}", r.get(f, 0)) for f in RATE_FIELDS}
    else:
        allocations = []
        for m, a in enumerate(_list(f"elections[{n}].allocations", e.get("allocations"))):
            a = _object(f"elections[{n}].allocations[{m}]", a, ("fund_id", "pct"))
            if not isinstance(a.get("fund_id"), str):
                raise _bad(f"elections[{n}].allocations[{m}].fund_id is required.")
            allocations.append({"fund_id": a["fund_id"], "pct": _number("pct", a.get("pct"))})
    eid = e.get("election_id")
    if eid is not None and (not isinstance(eid, str) or not eid):
        raise _bad(f"elections[{n}].election_id must be a string.")
    return {"election_id": eid, "plan_id": e["plan_id"], "participant_id": e["participant_id"], "kind": kind,
            "contribution_rates": rates, "allocations": allocations}  # fmt: skip


# ---------------------------------------------------------------------------------------------- state


class State:
    """iJoin's state; one SQLite connection used from the event loop only."""

    def __init__(self, state_path: Path, api_key: str) -> None:
        self.db = connect_state(state_path)
        self.api_key = api_key
        self.faults = FaultSwitch(API_PREFIX)

    # -- plans
    def plan_row(self, plan_id: str) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM ij_plan WHERE plan_id = ?", (plan_id,)).fetchone()
        if row is None:
            raise ApiError(404, "Plan not found", "not_found")
        return row

    def version(self, version_id: str | None) -> dict[str, Any] | None:
        if not version_id:
            return None
        row = self.db.execute("SELECT * FROM ij_plan_version WHERE version_id = ?", (version_id,)).fetchone()
        body = json.loads(row["body"])
        body["funds"] = [{k: f[k] for k in FUND_KEYS} for f in body["funds"]]
        body["contacts"] = {
            t: {k: c[k] for k in ("name", "email", "phone")} for t, c in body["contacts"].items()
        }
        return {
            "version_id": row["version_id"],
            "created_at": row["created_at"],
            "activated_at": row["activated_at"],
            **{k: body[k] for k in VERSION_FIELDS},
        }

    @staticmethod
    def body_of(version: dict[str, Any]) -> dict[str, Any]:
        return {k: version[k] for k in VERSION_FIELDS}

    def detail(self, plan_id: str) -> dict[str, Any]:
        row = self.plan_row(plan_id)
        return {
            "plan_id": row["plan_id"],
            "status": row["status"],
            "active": self.version(row["active_version_id"]),
            "draft": self.version(row["draft_version_id"]),
            "do_not_override": json.loads(row["do_not_override"]),
            "default_investment_never_from_recordkeeper": bool(row["default_investment_never"]),
            "last_sync": row["last_sync"],
        }

    def new_version(self, plan_id: str, body: dict[str, Any], now: str, activated: bool = False) -> str:
        (n,) = self.db.execute(
            "SELECT COUNT(*) FROM ij_plan_version WHERE plan_id = ?", (plan_id,)
        ).fetchone()
        version_id = f"{plan_id}-v{n + 1}"
        self.db.execute(
            "INSERT INTO ij_plan_version (version_id, plan_id, created_at, activated_at, body)"
            " VALUES (?, ?, ?, ?, ?)",
            (version_id, plan_id, now, now if activated else None, _dumps(body)),
        )
        return version_id

    def set_body(self, version_id: str, body: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE ij_plan_version SET body = ? WHERE version_id = ?", (_dumps(body), version_id)
        )

    def add_plan(self, plan_id: str, plan_name: str | None, created_at: str, replace: bool = False) -> None:
        exists = self.db.execute("SELECT 1 FROM ij_plan WHERE plan_id = ?", (plan_id,)).fetchone()
        if exists and not replace:
            raise ApiError(409, "A plan with this plan_id already exists.", "conflict")
        self.db.execute("DELETE FROM ij_plan WHERE plan_id = ?", (plan_id,))
        self.db.execute(
            "INSERT INTO ij_plan (plan_id, plan_name, status, created_at, do_not_override,"
            " default_investment_never) VALUES (?, ?, 'setup', ?, '[]', 0)",
            (plan_id, plan_name, created_at),
        )

    def sync(self, plan_id: str, body: dict[str, Any]) -> str:
        row = self.plan_row(plan_id)
        fields = clean_version_fields(body)
        now = _now()
        version_id = None
        if row["status"] == "setup":
            draft = self.version(row["draft_version_id"])
            if draft is None:
                version_id = self.new_version(plan_id, {**empty_version(row["plan_name"]), **fields}, now)
                self.db.execute(
                    "UPDATE ij_plan SET draft_version_id = ? WHERE plan_id = ?", (version_id, plan_id)
                )
            else:
                version_id = draft["version_id"]
                self.set_body(version_id, {**self.body_of(draft), **fields})
            result = "setup_updated"
        else:
            active = self.version(row["active_version_id"])
            assert active is not None
            current = self.body_of(active)
            merged = {**current, **fields}
            if lineup(merged) != lineup(current):
                draft = self.version(row["draft_version_id"])
                if draft is not None and self.body_of(draft) == merged:
                    version_id = draft["version_id"]  # the same draft again: keep it (and its reviewer)
                else:
                    version_id = self.new_version(plan_id, merged, now)
                    self.db.execute(
                        "UPDATE ij_plan SET draft_version_id = ? WHERE plan_id = ?", (version_id, plan_id)
                    )
                result = "draft_created"
            elif merged != current:
                version_id = active["version_id"]
                self.set_body(version_id, merged)
                result = "updated"
            else:
                version_id = active["version_id"]
                result = "unchanged"
        self.db.execute("UPDATE ij_plan SET last_sync = ? WHERE plan_id = ?", (now, plan_id))
        self.db.execute(
            "INSERT INTO ij_plan_sync (plan_id, fields, result, version_id, at) VALUES (?, ?, ?, ?, ?)",
            (plan_id, ",".join(sorted(body)), result, version_id, now),
        )
        return result

    def activate(self, plan_id: str, version_id: str | None = None) -> None:
        row = self.plan_row(plan_id)
        draft = self.version(row["draft_version_id"])
        if draft is None:
            raise ApiError(409, "Plan has no draft to activate", "no_draft")
        if version_id and draft["version_id"] != version_id:
            # The caller approved another version: activating this one would publish what nobody saw.
            raise ApiError(409, f"The draft is now {draft['version_id']}, not {version_id}", "draft_changed")
        errors = activation_errors(draft)
        if errors:
            raise ApiError(422, "Plan cannot be activated", "validation_failed", errors)
        now = _now()
        self.db.execute(
            "UPDATE ij_plan_version SET activated_at = ? WHERE version_id = ?", (now, draft["version_id"])
        )
        self.db.execute(
            "UPDATE ij_plan SET status = 'active', active_version_id = ?, draft_version_id = NULL"
            " WHERE plan_id = ?",
            (draft["version_id"], plan_id),
        )

    def fund_ids(self, row: sqlite3.Row) -> set[str] | None:
        """Funds of the active and draft versions; None if the plan has no plan data yet."""
        versions = [self.version(row["active_version_id"]), self.version(row["draft_version_id"])]
        present = [v for v in versions if v is not None]
        if not present:
            return None
        return {f["fund_id"] for v in present for f in v["funds"]}

    # -- participants
    def upsert_participants(self, plan_id: str, records: list[Any]) -> list[dict[str, Any]]:
        row = self.db.execute("SELECT * FROM ij_plan WHERE plan_id = ?", (plan_id,)).fetchone()
        if row is None:
            raise ApiError(404, "Plan not found: run Plan Sync first", "plan_not_found")
        fund_ids = self.fund_ids(row)
        if fund_ids is None:
            raise ApiError(409, "Plan has no plan data yet: run Plan Sync first", "plan_not_synced")
        ids = [
            r["participant_id"]
            for r in records
            if isinstance(r, dict) and isinstance(r.get("participant_id"), str)
        ]
        existing: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 400):
            part = ids[start : start + 400]
            for r in self.db.execute(
                f"SELECT participant_id, body FROM ij_participant WHERE plan_id = ?"
                f" AND participant_id IN ({', '.join('?' * len(part))})",
                [plan_id, *part],
            ):
                existing[r[0]] = json.loads(r[1])
        now = _now()
        results: list[dict[str, Any]] = []
        writes: dict[str, tuple[str, dict[str, Any]]] = {}  # participant_id -> ("insert" | "update", body)
        for rec in records:
            pid = rec.get("participant_id") if isinstance(rec, dict) else None
            try:
                if not isinstance(rec, dict):
                    raise _bad("Each participant must be a JSON object.")
                clean = clean_participant(rec, fund_ids)
                pid = clean["participant_id"]
                old = existing.get(pid)
                if old is None:
                    missing = [f for f in ("first_name", "last_name") if not clean.get(f)]
                    if missing:
                        raise _bad(f"{' and '.join(missing)} required for a new participant.")
                    new = {"sync_status": "Synchronized", "sync_messages": [], **clean}
                    status = "created"
                else:
                    new = {**old, **clean}
                    status = "unchanged" if new == old else "updated"
                if status != "unchanged":
                    kind = writes[pid][0] if pid in writes else ("insert" if old is None else "update")
                    writes[pid] = (kind, new)
                existing[pid] = new
                results.append({"participant_id": pid, "status": status})
            except ApiError as exc:
                results.append({"participant_id": pid if isinstance(pid, str) else None, "status": "failed",
                                "message": exc.message})  # fmt: skip
        self.db.execute("BEGIN")  # one transaction per batch
        try:
            self.db.executemany(
                "INSERT INTO ij_participant (plan_id, participant_id, body, sync_status, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(plan_id, pid, _dumps(b), b["sync_status"], now, now)
                 for pid, (kind, b) in writes.items() if kind == "insert"],
            )  # fmt: skip
            self.db.executemany(
                "UPDATE ij_participant SET body = ?, sync_status = ?, updated_at = ?"
                " WHERE plan_id = ? AND participant_id = ?",
                [(_dumps(b), b["sync_status"], now, plan_id, pid)
                 for pid, (kind, b) in writes.items() if kind == "update"],
            )  # fmt: skip
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return results

    # -- elections
    def election(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "election_id": row["election_id"],
            "plan_id": row["plan_id"],
            "participant_id": row["participant_id"],
            "kind": row["kind"],
            "contribution_rates": json.loads(row["contribution_rates"])
            if row["contribution_rates"]
            else None,
            "allocations": json.loads(row["allocations"]) if row["allocations"] else None,
            "status": row["status"],
            "created_at": row["created_at"],
            "sent_at": row["sent_at"],
        }

    def add_elections(self, items: list[dict[str, Any]], created_at: str) -> list[str]:
        ids = []
        for e in items:
            eid = e["election_id"]
            if eid is None:
                (n,) = self.db.execute("SELECT COUNT(*) FROM ij_election").fetchone()
                eid = f"EL{n + 1:06d}"
                while self.db.execute("SELECT 1 FROM ij_election WHERE election_id = ?", (eid,)).fetchone():
                    n += 1
                    eid = f"EL{n + 1:06d}"
            elif self.db.execute("SELECT 1 FROM ij_election WHERE election_id = ?", (eid,)).fetchone():
                raise ApiError(409, "An election with this election_id already exists.", "conflict")
            self.db.execute(
                "INSERT INTO ij_election (election_id, plan_id, participant_id, kind, contribution_rates,"
                " allocations, status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
                (
                    eid,
                    e["plan_id"],
                    e["participant_id"],
                    e["kind"],
                    _dumps(e["contribution_rates"]) if e["contribution_rates"] is not None else None,
                    _dumps(e["allocations"]) if e["allocations"] is not None else None,
                    created_at,
                ),
            )
            ids.append(eid)
        return ids


# ---------------------------------------------------------------------------------------------- seeding

SEED_ELECTIONS: tuple[dict[str, Any], ...] = (
    {"election_id": "EL000001", "participant_id": "P0001-000002", "kind": "contribution_rate",
     "contribution_rates": {"pretax_pct": 8.0, "roth_pct": 2.0, "aftertax_pct": 0.0},
     "created_at": "2026-10-31 15:00:00"},
    {"election_id": "EL000002", "participant_id": "P0001-000003", "kind": "contribution_rate",
     "contribution_rates": {"pretax_pct": 4.0, "roth_pct": 0.0, "aftertax_pct": 1.0},
     "created_at": "2026-10-31 15:05:00"},
    {"election_id": "EL000003", "participant_id": "P0001-000004", "kind": "allocation",
     "allocations": None,  # 60 % the plan's default fund, 40 % its first fund (set at seeding)
     "created_at": "2026-10-31 15:10:00"},
)  # fmt: skip


def seed_ijoin(state_path: Path, recordkeeper_db_path: Path) -> int:
    """iJoin's starting state, from a seeded recordkeeper (replaces any old state file). Returns the plans.

    Every recordkeeper plan is in iJoin; ``new_plan`` ones in ``setup`` (no version), the others ``active``
    with a version equal to the recordkeeper's plan (:func:`recordkeeper.plan_version`) except: iJoin's
    ``phone_contact`` is its own (``(800) 555-0001`` for P0001) and flagged ``do_not_override``; the
    ``lineup_changed`` plan's active line-up is the old one (without the added fund, the closed one still
    open); the ``default_investment_locked`` plan has ``default_investment_never_from_recordkeeper`` and,
    as default investment, its first open fund with a ticker that is not the recordkeeper's default. No
    participants; three pending elections of P0001 (:data:`SEED_ELECTIONS`, for those that exist).
    """
    state_path = Path(state_path)
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{state_path}{suffix}").unlink(missing_ok=True)
    source = sqlite3.connect(recordkeeper_db_path)
    state = State(state_path, "")
    db = state.db
    try:
        db.execute("BEGIN")
        pids = rk.plan_ids(source)
        for pid in pids:
            k = rk.plan_index(pid)
            cats = rk.plan_categories(k)
            version = rk.plan_version(source, pid)
            assert version is not None
            created = (datetime(2025, 1, 6, 9, 0, 0) + timedelta(days=2 * k)).strftime("%Y-%m-%d %H:%M:%S")
            if "new_plan" in cats:
                created = (datetime(2026, 10, 30, 14, 0, 0) + timedelta(minutes=k)).strftime(
                    "%Y-%m-%d %H:%M:%S"
                )
                state.add_plan(pid, version["plan_name"], created)
                continue
            version["phone_contact"] = IJOIN_PHONE.format(k=k)
            if "lineup_changed" in cats:
                version["funds"] = [
                    {**f, "is_open": True} for f in version["funds"] if f["fund_name"] != rk.ADDED_FUND[0]
                ]
            locked = "default_investment_locked" in cats
            if locked:
                version["default_investment"] = next(
                    f["fund_id"]
                    for f in version["funds"]
                    if f["is_open"] and f["ticker"] and f["fund_id"] != version["default_investment"]
                )
            db.execute(
                "INSERT INTO ij_plan (plan_id, plan_name, status, created_at, do_not_override,"
                " default_investment_never) VALUES (?, ?, 'active', ?, ?, ?)",
                (pid, version["plan_name"], created, _dumps(["phone_contact"]), int(locked)),
            )
            vid = state.new_version(pid, clean_version_fields(version), created, activated=True)
            db.execute("UPDATE ij_plan SET active_version_id = ? WHERE plan_id = ?", (vid, pid))
        for e in SEED_ELECTIONS:
            if (
                "P0001" not in pids
                or not source.execute(
                    "SELECT 1 FROM rk_participant WHERE participant_id = ?", (e["participant_id"],)
                ).fetchone()
            ):
                continue
            allocations = e.get("allocations")
            if e["kind"] == "allocation":
                v = rk.plan_version(source, "P0001")
                assert v is not None
                other = next(f["fund_id"] for f in v["funds"] if f["fund_id"] != v["default_investment"])
                allocations = [
                    {"fund_id": v["default_investment"], "pct": 60.0},
                    {"fund_id": other, "pct": 40.0},
                ]
            item = {
                "election_id": e["election_id"],
                "plan_id": "P0001",
                "participant_id": e["participant_id"],
                "kind": e["kind"],
                "contribution_rates": e.get("contribution_rates"),
                "allocations": allocations,
            }
            state.add_elections([item], e["created_at"])
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(pids)
    finally:
        source.close()
        db.close()


# ---------------------------------------------------------------------------------------------- app


def create_app(state_path: Path, api_key: str) -> FastAPI:
    """The iJoin-like API over an existing (seeded or empty) state file."""
    state = State(Path(state_path), api_key)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.db.close()

    app = FastAPI(title="iJoin sandbox", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = state

    install_error_handlers(app)

    @app.middleware("http")
    async def auth_log_and_faults(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        response: Response | None = None
        fault = None
        if not path.startswith("/sandbox"):
            fault = state.faults.take(request.method, path)
            response = state.faults.refusal(fault)
            if response is None:
                auth = request.headers.get("authorization", "")
                key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
                if not (key and secrets.compare_digest(key, state.api_key)):
                    response = failure(401, "Invalid API key", "unauthorized")
        if response is None:
            response = await call_next(request)
        if not path.startswith("/sandbox"):
            state.db.execute(
                "INSERT INTO request_log (method, path, status, at) VALUES (?, ?, ?, ?)",
                (request.method, path, response.status_code, _now()),
            )
        await state.faults.hold(fault)  # logged first: the sandbox shows the call landed, its answer is late
        return response

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise _bad("Request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise _bad("Request body must be a JSON object.")
        return body

    def paging(page: int, per_page: int) -> None:
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise _bad(f"per_page must be between 1 and {MAX_PER_PAGE}.")
        if page < 1:
            raise _bad("page must be 1 or more.")

    # -- plans ---------------------------------------------------------------------------------------

    @app.get(f"{API_PREFIX}/plans")
    async def list_plans(created_since: str | None = None) -> dict[str, Any]:
        since = parse_timestamp("created_since", created_since)
        where, args = ("WHERE p.created_at >= ?", [since]) if since else ("", [])
        rows = state.db.execute(
            "SELECT p.plan_id, p.status, p.created_at, p.draft_version_id,"
            " COALESCE(a.body, d.body) AS body, p.plan_name FROM ij_plan p"
            " LEFT JOIN ij_plan_version a ON a.version_id = p.active_version_id"
            f" LEFT JOIN ij_plan_version d ON d.version_id = p.draft_version_id {where} ORDER BY p.plan_id",
            args,
        ).fetchall()
        plans = [
            {
                "plan_id": r["plan_id"],
                "plan_name": json.loads(r["body"])["plan_name"] if r["body"] else r["plan_name"],
                "status": r["status"],
                "has_draft": r["draft_version_id"] is not None,
                "created_at": r["created_at"],
            }
            for r in rows
        ]
        return envelope({"plans": plans})

    @app.get(f"{API_PREFIX}/plans/{{plan_id}}")
    async def get_plan(plan_id: str) -> dict[str, Any]:
        return envelope(state.detail(plan_id))

    @app.put(f"{API_PREFIX}/plans/{{plan_id}}/sync")
    async def sync_plan(request: Request, plan_id: str) -> dict[str, Any]:
        body = await json_body(request)
        state.db.execute("BEGIN")
        try:
            result = state.sync(plan_id, body)
        except BaseException:
            state.db.execute("ROLLBACK")
            raise
        state.db.execute("COMMIT")
        return envelope({"result": result, "plan": state.detail(plan_id)})

    @app.post(f"{API_PREFIX}/plans/{{plan_id}}/activate")
    async def activate_plan(plan_id: str, request: Request) -> dict[str, Any]:
        raw = await request.body()
        body = json.loads(raw) if raw.strip() else {}
        version_id = body.get("version_id") if isinstance(body, dict) else None
        state.db.execute("BEGIN")
        try:
            state.activate(plan_id, version_id)
        except BaseException:
            state.db.execute("ROLLBACK")
            raise
        state.db.execute("COMMIT")
        return envelope({"result": "activated", "plan": state.detail(plan_id)})

    # -- participants --------------------------------------------------------------------------------

    @app.get(f"{API_PREFIX}/plans/{{plan_id}}/participants")
    async def list_participants(plan_id: str, page: int = 1, per_page: int = 100) -> dict[str, Any]:
        paging(page, per_page)
        state.plan_row(plan_id)
        (total,) = state.db.execute(
            "SELECT COUNT(*) FROM ij_participant WHERE plan_id = ?", (plan_id,)
        ).fetchone()
        rows = state.db.execute(
            "SELECT body, created_at, updated_at FROM ij_participant WHERE plan_id = ?"
            " ORDER BY participant_id LIMIT ? OFFSET ?",
            (plan_id, per_page, (page - 1) * per_page),
        ).fetchall()
        participants = [{**_ordered(json.loads(r[0])), "created_at": r[1], "updated_at": r[2]} for r in rows]
        return envelope(
            {
                "total": total,
                "page": page,
                "per_page": per_page,
                "has_next": page * per_page < total,
                "participants": participants,
            }
        )

    @app.put(f"{API_PREFIX}/plans/{{plan_id}}/participants")
    async def put_participants(request: Request, plan_id: str) -> dict[str, Any]:
        body = await json_body(request)
        records = body.get("participants")
        if not isinstance(records, list):
            raise _bad("participants must be a list.")
        if len(records) > MAX_PER_PAGE:
            raise _bad(f"At most {MAX_PER_PAGE} participants per request.")
        results = state.upsert_participants(plan_id, records)
        counts = {
            s: sum(1 for r in results if r["status"] == s)
            for s in ("created", "updated", "unchanged", "failed")
        }
        return envelope({**counts, "results": results})

    # -- activity ------------------------------------------------------------------------------------

    @app.post(f"{API_PREFIX}/activity")
    async def post_activity(request: Request) -> dict[str, Any]:
        allowed = ("type", "plan_id", "status", "started_at", "finished_at", "errors", "payload_url")
        body = _object("body", await json_body(request), allowed)
        if body.get("type") not in ACTIVITY_TYPES:
            raise _bad(f"type must be one of {', '.join(ACTIVITY_TYPES)}.")
        status = body.get("status")
        if not isinstance(status, str) or not status:
            raise _bad("status is required.")
        errors = _list("errors", body.get("errors") or [])
        cur = state.db.execute(
            "INSERT INTO ij_activity (type, plan_id, status, started_at, finished_at, errors, payload_url,"
            " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                body["type"],
                _string("plan_id", body.get("plan_id")),
                status,
                parse_timestamp("started_at", _string("started_at", body.get("started_at"))),
                parse_timestamp("finished_at", _string("finished_at", body.get("finished_at"))),
                json.dumps(errors),
                _string("payload_url", body.get("payload_url")),
                _now(),
            ),
        )
        return envelope({"id": cur.lastrowid})

    @app.get(f"{API_PREFIX}/activity")
    async def list_activity(
        since: str | None = None,
        type: str | None = None,
        plan_id: str | None = None,
    ) -> dict[str, Any]:
        clauses, args = [], []
        if (stamp := parse_timestamp("since", since)) is not None:
            clauses.append("COALESCE(started_at, recorded_at) >= ?")
            args.append(stamp)
        if type:
            clauses.append("type = ?")
            args.append(type)
        if plan_id:
            clauses.append("plan_id = ?")
            args.append(plan_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = state.db.execute(f"SELECT * FROM ij_activity {where} ORDER BY id", args).fetchall()
        return envelope({"activities": [{**dict(r), "errors": json.loads(r["errors"])} for r in rows]})

    # -- elections -----------------------------------------------------------------------------------

    @app.get(f"{API_PREFIX}/elections")
    async def list_elections(status: str = "pending", plan_id: str | None = None) -> dict[str, Any]:
        if status not in ("pending", "sent", "all"):
            raise _bad("status must be pending, sent or all.")
        clauses, args = [], []
        if status != "all":
            clauses.append("status = ?")
            args.append(status)
        if plan_id:
            clauses.append("plan_id = ?")
            args.append(plan_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = state.db.execute(
            f"SELECT * FROM ij_election {where} ORDER BY created_at, election_id", args
        ).fetchall()
        return envelope({"elections": [state.election(r) for r in rows]})

    @app.post(f"{API_PREFIX}/elections/{{election_id}}/sent")
    async def election_sent(election_id: str) -> dict[str, Any]:
        row = state.db.execute("SELECT * FROM ij_election WHERE election_id = ?", (election_id,)).fetchone()
        if row is None:
            raise ApiError(404, "Election not found", "not_found")
        if row["status"] != "sent":
            state.db.execute(
                "UPDATE ij_election SET status = 'sent', sent_at = ? WHERE election_id = ?",
                (_now(), election_id),
            )
            row = state.db.execute(
                "SELECT * FROM ij_election WHERE election_id = ?", (election_id,)
            ).fetchone()
        return envelope(state.election(row))

    # -- sandbox admin (no auth; loopback only) ------------------------------------------------------

    @app.get("/sandbox/health")
    async def health() -> dict[str, Any]:
        return envelope({"ok": True})

    @app.get("/sandbox/plans/{plan_id}/syncs")
    async def plan_syncs(plan_id: str) -> dict[str, Any]:
        rows = state.db.execute(
            "SELECT fields, result, version_id, at FROM ij_plan_sync WHERE plan_id = ? ORDER BY seq",
            (plan_id,),
        ).fetchall()
        return envelope([{**dict(r), "fields": [f for f in r["fields"].split(",") if f]} for r in rows])

    @app.post("/sandbox/plans")
    async def add_plan(request: Request) -> dict[str, Any]:
        body = _object("body", await json_body(request), ("plan_id", "plan_name", "replace"))
        pid = body.get("plan_id")
        if not isinstance(pid, str) or not pid:
            raise _bad("plan_id is required.")
        state.add_plan(pid, _string("plan_name", body.get("plan_name")), _now(), bool(body.get("replace")))
        return envelope(state.detail(pid))

    @app.get("/sandbox/participants/{plan_id}/{participant_id}")
    async def raw_participant(plan_id: str, participant_id: str) -> dict[str, Any]:
        row = state.db.execute(
            "SELECT * FROM ij_participant WHERE plan_id = ? AND participant_id = ?", (plan_id, participant_id)
        ).fetchone()
        if row is None:
            raise ApiError(404, "Participant not found", "not_found")
        return envelope({**dict(row), "body": _ordered(json.loads(row["body"]))})

    @app.post("/sandbox/elections")
    async def add_elections(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        items = [clean_election(e, n) for n, e in enumerate(_list("elections", body.get("elections")))]
        state.db.execute("BEGIN")
        try:
            ids = state.add_elections(items, _now())
        except BaseException:
            state.db.execute("ROLLBACK")
            raise
        state.db.execute("COMMIT")
        return envelope({"ids": ids})

    @app.get("/sandbox/stats")
    async def stats() -> dict[str, Any]:
        db = state.db
        by_status = dict(db.execute("SELECT status, COUNT(*) FROM ij_plan GROUP BY 1").fetchall())
        elections = dict(db.execute("SELECT status, COUNT(*) FROM ij_election GROUP BY 1").fetchall())
        by_path = dict(db.execute("SELECT method || ' ' || path, COUNT(*) FROM request_log GROUP BY 1"))
        return envelope(
            {
                "plans": by_status,
                "drafts": db.execute(
                    "SELECT COUNT(*) FROM ij_plan WHERE draft_version_id IS NOT NULL"
                ).fetchone()[0],
                "participants": db.execute("SELECT COUNT(*) FROM ij_participant").fetchone()[0],
                "plan_syncs": db.execute("SELECT COUNT(*) FROM ij_plan_sync").fetchone()[0],
                "activities": db.execute("SELECT COUNT(*) FROM ij_activity").fetchone()[0],
                "elections": elections,
                "requests": sum(by_path.values()),
                "requests_by_path": by_path,
            }
        )

    @app.post("/sandbox/faults")
    async def add_fault(request: Request) -> dict[str, Any]:
        return envelope(state.faults.arm(await json_body(request)))

    @app.delete("/sandbox/faults")
    async def clear_faults() -> dict[str, Any]:
        state.faults.clear()
        return envelope([])

    return app
