"""A PlanSource-like Admin API v2 (subscribers, OAuth2 client credentials) over a SQLite state file.

Answers in the shape of ``/work/shared/vendors/plansource-api.md``: the envelope
``{"status", "errors", "data"}`` everywhere except the OAuth token itself. Error messages never carry
submitted values (an SSN must never reach a client's logs). Sandbox-only admin routes live under
``/sandbox/`` and need no token: the server binds to loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import re
import secrets
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from hub_sandbox import coverages
from hub_sandbox.generator import _SSN_SPACE, category_of, person_index, subscriber_id, valid_ssn
from hub_sandbox.vendor_app import (
    ApiError,
    FaultSwitch,
    envelope,
    failure,
    install_error_handlers,
    page_of,
)

XREF_DIR = Path(__file__).resolve().parents[1] / "xref"
MAX_PER_PAGE = 500
CENSUS_POLL_SECONDS = 0.5
ENCRYPTED_CENSUS_SUFFIXES = (".csv.pgp", ".csv.gpg")
CENSUS_SUFFIXES = (".csv", *ENCRYPTED_CENSUS_SUFFIXES)
_ID_NAMESPACE = uuid.UUID("6f1c7c52-4d0e-4a8f-9a43-0c9d3b1f6a10")

# Writable subscriber fields (everything but id, public_id and the timestamps).
FIELDS: tuple[str, ...] = (
    "employee_number",
    "user_name",
    "first_name",
    "middle_name",
    "last_name",
    "ssn",
    "birthdate",
    "gender",
    "marital_status",
    "address_1",
    "address_2",
    "city",
    "state",
    "zip_code",
    "country",
    "home_phone",
    "work_phone",
    "cell_phone",
    "email",
    "hire_date",
    "original_hire_date",
    "union_code",
    "org_payroll_id",
    "org_class",
    "employment_level",
    "division",
    "location",
    "business_title",
    "current_salary",
    "subscriber_status",
    "termination_date",
    "termination_reason",
    "is_voluntary_termination",
    "test_employee",
)
COLUMNS: tuple[str, ...] = ("id", "public_id", *FIELDS, "created_at", "updated_at")
DATE_FIELDS = ("birthdate", "hire_date", "original_hire_date", "termination_date")
BOOL_FIELDS = ("is_voluntary_termination", "test_employee")

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    public_id TEXT NOT NULL,
    employee_number TEXT NOT NULL UNIQUE,
    user_name TEXT, first_name TEXT, middle_name TEXT, last_name TEXT, ssn TEXT, birthdate TEXT,
    gender TEXT, marital_status TEXT, address_1 TEXT, address_2 TEXT, city TEXT, state TEXT, zip_code TEXT,
    country TEXT, home_phone TEXT, work_phone TEXT, cell_phone TEXT, email TEXT, hire_date TEXT,
    original_hire_date TEXT, union_code TEXT, org_payroll_id TEXT, org_class TEXT, employment_level TEXT,
    division TEXT, location TEXT, business_title TEXT, current_salary TEXT, subscriber_status TEXT,
    termination_date TEXT, termination_reason TEXT, is_voluntary_termination INTEGER,
    test_employee INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
-- What each write sent (field names only, never values): tests assert that only changes were sent.
CREATE TABLE IF NOT EXISTS subscriber_change (
    seq INTEGER PRIMARY KEY,
    subscriber_id TEXT NOT NULL,
    employee_number TEXT NOT NULL,
    kind TEXT NOT NULL,            -- created | updated | terminated | rehired
    fields TEXT NOT NULL,          -- comma-separated names of the fields sent
    changed_fields TEXT NOT NULL,  -- the subset whose stored value actually changed
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS request_log (
    seq INTEGER PRIMARY KEY, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS census_import (
    seq INTEGER PRIMARY KEY, file_name TEXT NOT NULL, rows INTEGER NOT NULL, accepted INTEGER NOT NULL,
    rejected INTEGER NOT NULL, error TEXT, imported_at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _read_xref(name: str) -> list[dict[str, str]]:
    with (XREF_DIR / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _xref_map(name: str) -> dict[str, str]:
    return {row["hcm_code"]: row["plansource_code"] for row in _read_xref(name)}


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def meta() -> dict[str, Any]:
    """Allowed values, from the plansource_code column of include/xref."""
    return {
        "employment_levels": _unique([r["plansource_code"] for r in _read_xref("employment_type.csv")]),
        "org_classes": _unique([r["plansource_code"] for r in _read_xref("pay_type.csv")]),
        "org_payroll_ids": _unique([r["plansource_code"] for r in _read_xref("pay_group.csv")]),
        "genders": _unique([r["plansource_code"] for r in _read_xref("gender.csv")]),
        "marital_statuses": _unique([r["plansource_code"] for r in _read_xref("marital_status.csv")]),
        "union_codes": _unique([r["plansource_code"] for r in _read_xref("union_code.csv")]),
        "subscriber_statuses": _unique([r["plansource_code"] for r in _read_xref("employee_status.csv")]),
        "termination_reasons": [
            {"name": r["plansource_code"], "voluntary": r["voluntary"] == "true"}
            for r in _read_xref("termination_reason.csv")
        ],
    }


def connect_state(state_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(state_path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA + coverages.TABLE_SQL + coverages.INDEX_SQL)
    return conn


# ---------------------------------------------------------------------------------------------- seeding


def seed_plansource(state_path: Path, hcm_db_path: Path, seed: int = 42) -> int:
    """PlanSource's starting state: every HCM person but the new hires (primary EIN), deliberate mismatches
    included, and their payroll coverages (:mod:`hub_sandbox.coverages`, from ``seed``). Replaces any old
    state file. Returns the number of subscribers."""
    state_path = Path(state_path)
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{state_path}{suffix}").unlink(missing_ok=True)
    gender, marital = _xref_map("gender.csv"), _xref_map("marital_status.csv")
    level, org_class = _xref_map("employment_type.csv"), _xref_map("pay_type.csv")
    payroll, union = _xref_map("pay_group.csv"), _xref_map("union_code.csv")
    status, reason = _xref_map("employee_status.csv"), _xref_map("termination_reason.csv")
    voluntary = {r["hcm_code"]: r["voluntary"] == "true" for r in _read_xref("termination_reason.csv")}

    hcm = sqlite3.connect(hcm_db_path)
    out = connect_state(state_path)
    out.execute("PRAGMA journal_mode=OFF")
    out.execute("PRAGMA synchronous=OFF")
    sql = f"INSERT INTO subscriber ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    count = 0
    try:
        cur = hcm.execute(
            "SELECT p.person_number, p.first_name, p.middle_name, p.last_name, p.ssn, p.birth_date,"
            " p.gender_code, p.marital_status_code, p.address_1, p.address_2, p.city, p.state, p.zip_code,"
            " p.country, p.home_phone, p.work_email, p.plansource_username, p.updated_at,"
            " e.employee_status_code, e.employment_type_code, e.pay_group_code, e.pay_type_code,"
            " e.union_code,"
            " e.hire_date, e.original_hire_date, e.termination_date, e.termination_reason_code,"
            " e.annual_salary, e.job_title, e.location, e.division"
            " FROM hcm_person p JOIN hcm_employment e"
            " ON e.person_number = p.person_number AND e.is_primary = 1"
            " ORDER BY p.person_number"
        )
        out.execute("BEGIN")
        while rows := cur.fetchmany(5000):
            batch = []
            for r in rows:
                number = r[0]
                i = person_index(number)
                cats = category_of(i)
                if "new_hire" in cats:
                    continue
                ps_id = subscriber_id(i)
                user_name = r[16]
                if "username_mismatch" in cats:
                    user_name = f"{r[1].lower()}.{r[3].lower()}{i}"
                ssn = valid_ssn(_SSN_SPACE - i) if "ssn_mismatch" in cats else r[4]
                term_code = r[26]
                batch.append(
                    (
                        ps_id,
                        str(uuid.uuid5(_ID_NAMESPACE, ps_id)),
                        number,
                        user_name,
                        r[1],
                        r[2],
                        r[3],
                        ssn,
                        r[5],
                        gender.get(r[6]),
                        marital.get(r[7]),
                        r[8],
                        r[9],
                        r[10],
                        r[11],
                        r[12],
                        r[13],
                        r[14],
                        None,
                        None,
                        r[15],
                        r[23],
                        r[24],
                        union.get(r[22]) if r[22] else None,
                        payroll.get(r[20]),
                        org_class.get(r[21]),
                        level.get(r[19]),
                        r[30],
                        r[29],
                        r[28],
                        f"{float(r[27]):.1f}" if r[27] is not None else None,
                        status.get(r[18]),
                        r[25],
                        reason.get(term_code) if term_code else None,
                        int(voluntary[term_code]) if term_code in voluntary else None,
                        int("test_subscriber" in cats),
                        r[17],
                        r[17],
                    )
                )
            out.executemany(sql, batch)
            count += len(batch)
        out.execute("COMMIT")
        coverages.seed_coverages_into(out, seed)
        out.execute("PRAGMA journal_mode=WAL")
    finally:
        hcm.close()
        out.close()
    return count


# ---------------------------------------------------------------------------------------------- helpers


def _row_to_subscriber(row: sqlite3.Row) -> dict[str, Any]:
    out = {k: row[k] for k in COLUMNS}
    for k in BOOL_FIELDS:
        out[k] = None if out[k] is None else bool(out[k])
    return out


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SSN_RE = re.compile(r"^\d{3}-?\d{2}-?\d{4}$")


def _clean_fields(body: dict[str, Any], allowed: dict[str, Any]) -> dict[str, Any]:
    """Validate a subscriber payload; messages name the field, never its value."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ApiError(400, f"Unknown field(s): {', '.join(unknown)}.", "bad_request")
    clean: dict[str, Any] = {}
    for key, value in body.items():
        if value is None:
            clean[key] = None
            continue
        if key in BOOL_FIELDS:
            if isinstance(value, str):  # "false" must not read as true
                value = value.strip().lower() in ("true", "1", "yes")
            clean[key] = int(bool(value))
            continue
        if not isinstance(value, str | int | float):
            raise ApiError(400, f"{key} must be a string.", "bad_request")
        value = str(value)
        if key in DATE_FIELDS:
            try:
                if not _DATE_RE.match(value):
                    raise ValueError
                datetime.strptime(value, "%Y-%m-%d")
            except ValueError:
                message = f"{key} date is not a valid YYYY-MM-DD date format."
                raise ApiError(400, message, "bad_request") from None
        if key == "ssn":
            if not _SSN_RE.match(value):
                raise ApiError(400, "ssn is not a valid 9-digit social security number.", "bad_request")
            value = value.replace("-", "")
        choices = allowed.get(key)
        if choices is not None and value not in choices:
            message = f"{key} is not one of the allowed values: {', '.join(choices)}."
            raise ApiError(400, message, "bad_request")
        clean[key] = value
    return clean


# ---------------------------------------------------------------------------------------------- app


class State:
    """Everything mutable the app holds; one SQLite connection used from the event loop only."""

    def __init__(
        self,
        state_path: Path,
        sftp_root: Path,
        client_id: str,
        client_secret: str,
        ttl: int,
        pgp_home: Path | None = None,
    ) -> None:
        self.db = connect_state(state_path)
        self.sftp_root = Path(sftp_root)
        # A GnuPG home holding "PlanSource's" private key: census files sent as .csv.pgp are decrypted.
        self.pgp_home = pgp_home
        self.client_id, self.client_secret = client_id, client_secret
        self.token_ttl = ttl
        self.tokens: dict[str, tuple[float, int]] = {}  # token -> (issued at, ttl at issue)
        # Walking the subscriber list page by page costs one index seek a page, not an ever longer
        # OFFSET and a COUNT(*) each time (quadratic over a million subscribers): the last key of each
        # page and the count are remembered until a subscriber is created.
        self.subscriber_total: int | None = None
        self.subscriber_page_end: dict[tuple[int, int], str] = {}  # (per_page, page) -> last number
        # POST /sandbox/expire_tokens: after this many more authorised calls, every token issued expires.
        self.expire_tokens_after: int | None = None
        self.faults = FaultSwitch("/admin/v2")
        self.census_seen: dict[str, tuple[int, float]] = {}
        self.coverages = coverages.CoverageQueries(self.db)
        m = meta()
        self.allowed: dict[str, list[str]] = {
            "gender": m["genders"],
            "marital_status": m["marital_statuses"],
            "employment_level": m["employment_levels"],
            "org_class": m["org_classes"],
            "org_payroll_id": m["org_payroll_ids"],
            "union_code": m["union_codes"],
            "subscriber_status": m["subscriber_statuses"],
            "termination_reason": [r["name"] for r in m["termination_reasons"]],
        }

    def expire_all_tokens(self) -> None:
        self.tokens = {token: (issued, 0) for token, (issued, _ttl) in self.tokens.items()}
        self.expire_tokens_after = None

    # -- subscribers
    def find(self, key: str, is_custom_id: bool) -> sqlite3.Row | None:
        col = "employee_number" if is_custom_id else "id"
        return self.db.execute(f"SELECT * FROM subscriber WHERE {col} = ?", (key,)).fetchone()

    def log_change(self, row: sqlite3.Row, kind: str, sent: list[str], changed: list[str]) -> None:
        self.db.execute(
            "INSERT INTO subscriber_change (subscriber_id, employee_number, kind, fields, changed_fields, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (row["id"], row["employee_number"], kind, ",".join(sent), ",".join(changed), _now()),
        )

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = _clean_fields(body, self.allowed)
        if not fields.get("employee_number"):
            raise ApiError(400, "employee_number is required.", "bad_request")
        if not (fields.get("user_name") or (fields.get("first_name") and fields.get("last_name"))):
            raise ApiError(400, "A user_name or first_name and last_name is required.", "bad_request")
        if self.find(fields["employee_number"], True) is not None:
            raise ApiError(409, "A subscriber with this employee_number already exists.", "conflict")
        self.subscriber_total, self.subscriber_page_end = None, {}
        (seq,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM subscriber").fetchone()
        ps_id = f"PS{60_000_000 + seq:08d}"  # above every seeded id (PS1xxxxxxx)
        now = _now()
        values = {k: fields.get(k) for k in FIELDS}
        values["test_employee"] = values["test_employee"] or 0
        values["subscriber_status"] = values["subscriber_status"] or "Active"
        values.update(
            id=ps_id, public_id=str(uuid.uuid5(_ID_NAMESPACE, ps_id)), created_at=now, updated_at=now
        )
        self.db.execute(
            f"INSERT INTO subscriber ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            [values[k] for k in COLUMNS],
        )
        row = self.find(ps_id, False)
        assert row is not None
        self.log_change(row, "created", sorted(body), sorted(fields))
        return _row_to_subscriber(row)

    def update(
        self, row: sqlite3.Row, body: dict[str, Any], kind: str = "updated", sent: list[str] | None = None
    ) -> dict[str, Any]:
        fields = _clean_fields(body, self.allowed)
        new_number = fields.get("employee_number", row["employee_number"])
        if new_number != row["employee_number"] and (not new_number or self.find(new_number, True)):
            raise ApiError(409, "A subscriber with this employee_number already exists.", "conflict")
        changed = sorted(k for k, v in fields.items() if row[k] != v)
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(
                f"UPDATE subscriber SET {sets}, updated_at = ? WHERE id = ?",
                [*fields.values(), _now(), row["id"]],
            )
        self.log_change(row, kind, sorted(sent if sent is not None else body), changed)
        new = self.find(row["id"], False)
        assert new is not None
        return _row_to_subscriber(new)

    # -- census
    def poll_census(self) -> None:
        inbound = self.sftp_root / "inbound"
        if not inbound.is_dir():
            return
        (inbound / "processed").mkdir(exist_ok=True)
        for path in sorted(inbound.iterdir()):
            name = path.name
            if not path.is_file() or name.startswith(".") or not name.endswith(CENSUS_SUFFIXES):
                continue  # .tmp / .part: an upload still in progress under its temporary name
            st = path.stat()
            sig = (st.st_size, st.st_mtime)
            if self.census_seen.get(name) != sig:
                self.census_seen[name] = sig  # wait one poll for the size to settle
                continue
            del self.census_seen[name]
            self.ingest_census(path)

    def ingest_census(self, path: Path) -> None:
        rows = accepted = 0
        error = None
        with self._census_text(path) as (fh, problems):
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            required = ("employee_number", "first_name", "last_name", "ssn", "birthdate")
            missing = [c for c in required if c not in header]
            if missing:
                error = f"missing columns: {', '.join(missing)}"
            for rec in reader:
                rows += 1
                number, last = (
                    (rec.get("employee_number") or "").strip(),
                    (rec.get("last_name") or "").strip(),
                )
                if not missing and number and last:
                    accepted += 1
        if problems:  # nothing of a file that did not decrypt counts
            rows = accepted = 0
            error = problems[0]
        self.db.execute(
            "INSERT INTO census_import (file_name, rows, accepted, rejected, error, imported_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (path.name, rows, accepted, rows - accepted, error, _now()),
        )
        target = path.parent / "processed" / path.name
        if target.exists():
            target = target.with_name(f"{path.stem}.{int(time.time() * 1000)}{path.suffix}")
        shutil.move(path, target)

    @contextlib.contextmanager
    def _census_text(self, path: Path) -> Iterator[tuple[IO[str], list[str]]]:
        """The census as text, a .pgp one decrypted by gpg as it is read; problems are known at exit."""
        problems: list[str] = []
        if not path.name.endswith(ENCRYPTED_CENSUS_SUFFIXES):
            with path.open(newline="", encoding="utf-8", errors="replace") as fh:
                yield fh, problems
            return
        if self.pgp_home is None:
            problems.append("encrypted file, and the sandbox was started without a PGP private key")
            yield io.StringIO(""), problems
            return
        gpg = subprocess.Popen(  # noqa: S603 - Debian's gpg on a file we hold
            ["gpg", "--homedir", str(self.pgp_home), "--batch", "--quiet", "--decrypt", str(path)],  # noqa: S607
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert gpg.stdout is not None
        try:
            with io.TextIOWrapper(gpg.stdout, encoding="utf-8", errors="replace", newline="") as text:
                yield text, problems
        finally:
            if gpg.wait(timeout=60) != 0:
                problems.append("encrypted file that does not decrypt with the sandbox's PGP key")


def create_app(
    state_path: Path,
    sftp_root: Path,
    client_id: str,
    client_secret: str,
    token_ttl_seconds: int,
    pgp_home: Path | None = None,
) -> FastAPI:
    """The PlanSource-like API over an existing (seeded or empty) state file."""
    state = State(Path(state_path), Path(sftp_root), client_id, client_secret, token_ttl_seconds, pgp_home)

    async def census_loop() -> None:
        while True:
            try:
                state.poll_census()
            except Exception as exc:  # keep polling; a bad file must not stop the sandbox
                print(f"census poll failed: {type(exc).__name__}", flush=True)
            await asyncio.sleep(CENSUS_POLL_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(census_loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            state.db.close()

    app = FastAPI(
        title="PlanSource sandbox", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.sandbox = state

    install_error_handlers(app)

    @app.middleware("http")
    async def log_and_faults(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        fault = None if path.startswith("/sandbox") else state.faults.take(request.method, path)
        response = state.faults.refusal(fault) or await call_next(request)
        if not path.startswith("/sandbox"):
            state.db.execute(
                "INSERT INTO request_log (method, path, status, at) VALUES (?, ?, ?, ?)",
                (request.method, path, response.status_code, _now()),
            )
        await state.faults.hold(fault)  # logged first: the sandbox shows the call landed, its answer is late
        return response

    # -- OAuth ---------------------------------------------------------------------------------------

    @app.post("/oauth/v2/token", response_model=None)
    async def token(request: Request) -> dict[str, Any] | JSONResponse:
        form = await request.form()
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return failure(401, "Client authentication failed", "invalid_client")
        if form.get("grant_type") != "client_credentials":
            return failure(400, "grant_type must be client_credentials", "unsupported_grant_type")
        if form.get("scope", "admin_api_v2") != "admin_api_v2":
            return failure(400, "scope must be admin_api_v2", "invalid_scope")
        if not (
            isinstance(cid, str)
            and isinstance(secret, str)
            and secrets.compare_digest(cid, state.client_id)
            and secrets.compare_digest(secret, state.client_secret)
        ):
            return failure(401, "Client authentication failed", "invalid_client")
        value = secrets.token_urlsafe(32)
        state.tokens[value] = (time.time(), state.token_ttl)
        return {
            "access_token": value,
            "token_type": "bearer",
            "expires_in": state.token_ttl,
            "scope": "admin_api_v2",
            "created_at": int(time.time()),
        }

    def check_token(request: Request) -> None:
        auth = request.headers.get("authorization", "")
        value = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        issued = state.tokens.get(value)
        if issued is None:
            raise ApiError(401, "Invalid or missing access token", "invalid_token")
        # Shortening the TTL (POST /sandbox/token_ttl) also shortens tokens already issued.
        if time.time() > issued[0] + min(issued[1], state.token_ttl):
            raise ApiError(401, "Signature has expired", "invalid_token")
        if state.expire_tokens_after is not None:
            state.expire_tokens_after -= 1
            if state.expire_tokens_after <= 0:
                state.expire_all_tokens()

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Request body is not valid JSON.", "bad_request") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object.", "bad_request")
        return body

    def lookup(key: str, is_custom_id: str | None) -> sqlite3.Row:
        row = state.find(key, str(is_custom_id).lower() == "true")
        if row is None:
            raise ApiError(404, "Subscriber not found", "not_found")
        return row

    # -- subscribers ---------------------------------------------------------------------------------

    @app.get("/admin/v2/subscriber/meta")
    async def subscriber_meta(request: Request) -> dict[str, Any]:
        check_token(request)
        return envelope(meta())

    @app.get("/admin/v2/subscriber/{key}")
    async def get_subscriber(request: Request, key: str, is_custom_id: str | None = None) -> dict[str, Any]:
        check_token(request)
        return envelope(_row_to_subscriber(lookup(key, is_custom_id)))

    @app.post("/admin/v2/subscriber")
    async def create_subscriber(request: Request) -> dict[str, Any]:
        check_token(request)
        body = await json_body(request)
        state.db.execute("BEGIN")
        try:
            created = state.create(body)
        except BaseException:
            state.db.execute("ROLLBACK")
            raise
        state.db.execute("COMMIT")
        return envelope(created)

    @app.put("/admin/v2/subscriber/{key}/terminate")
    async def terminate(request: Request, key: str, is_custom_id: str | None = None) -> dict[str, Any]:
        check_token(request)
        body = await json_body(request)
        allowed = {"termination_date", "termination_reason", "is_voluntary_termination"}
        if set(body) - allowed or not body.get("termination_date"):
            message = f"termination_date is required; allowed fields: {', '.join(sorted(allowed))}."
            raise ApiError(400, message, "bad_request")
        row = lookup(key, is_custom_id)
        changes = {**body, "subscriber_status": "Terminated"}
        return envelope(state.update(row, changes, "terminated", sent=list(body)))

    @app.put("/admin/v2/subscriber/{key}/rehire")
    async def rehire(request: Request, key: str, is_custom_id: str | None = None) -> dict[str, Any]:
        check_token(request)
        body = await json_body(request)
        if set(body) != {"hire_date"}:
            raise ApiError(400, "hire_date is required and is the only field allowed.", "bad_request")
        row = lookup(key, is_custom_id)
        changes = {
            "hire_date": body["hire_date"],
            "subscriber_status": "Active",
            "termination_date": None,
            "termination_reason": None,
            "is_voluntary_termination": None,
        }
        return envelope(state.update(row, changes, "rehired", sent=list(body)))

    @app.put("/admin/v2/subscriber/{key}")
    async def update_subscriber(
        request: Request, key: str, is_custom_id: str | None = None
    ) -> dict[str, Any]:
        check_token(request)
        body = await json_body(request)
        row = lookup(key, is_custom_id)
        return envelope(state.update(row, body))

    @app.get("/admin/v2/subscribers")
    async def list_subscribers(
        request: Request, page: int = 1, per_page: int = 100, employee_numbers: str | None = None
    ) -> dict[str, Any]:
        check_token(request)
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ApiError(400, f"per_page must be between 1 and {MAX_PER_PAGE}.", "bad_request")
        if page < 1:
            raise ApiError(400, "page must be 1 or more.", "bad_request")
        where, args = "", []
        if employee_numbers:
            numbers = [n for n in employee_numbers.split(",") if n]
            where = f"WHERE employee_number IN ({', '.join('?' * len(numbers))})"
            args = numbers
        if where:
            (total,) = state.db.execute(f"SELECT COUNT(*) FROM subscriber {where}", args).fetchone()
        else:
            if state.subscriber_total is None:
                (state.subscriber_total,) = state.db.execute("SELECT COUNT(*) FROM subscriber").fetchone()
            total = state.subscriber_total
        after = None if where else state.subscriber_page_end.get((per_page, page - 1))
        if after is not None:
            rows = state.db.execute(
                "SELECT * FROM subscriber WHERE employee_number > ? ORDER BY employee_number LIMIT ?",
                [after, per_page],
            ).fetchall()
        else:
            rows = state.db.execute(
                f"SELECT * FROM subscriber {where} ORDER BY employee_number LIMIT ? OFFSET ?",
                [*args, per_page, (page - 1) * per_page],
            ).fetchall()
        if rows and not where:
            if len(state.subscriber_page_end) > 8192:
                state.subscriber_page_end.clear()
            state.subscriber_page_end[(per_page, page)] = rows[-1]["employee_number"]

        def link(p: int) -> str:
            query = f"page={p}&per_page={per_page}"
            if employee_numbers:
                query += f"&employee_numbers={employee_numbers}"
            return f"{str(request.base_url).rstrip('/')}/admin/v2/subscribers?{query}"

        return page_of("subscribers", [_row_to_subscriber(r) for r in rows], total, page, per_page, link)

    async def bulk_records(request: Request) -> list[Any]:
        body = await json_body(request)
        records = body.get("subscribers")
        if not isinstance(records, list):
            raise ApiError(400, "subscribers must be a list.", "bad_request")
        if len(records) > MAX_PER_PAGE:
            raise ApiError(400, f"At most {MAX_PER_PAGE} subscribers per request.", "bad_request")
        return records

    def bulk(records: list[Any], one: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        results = []
        state.db.execute("BEGIN")  # one transaction per batch; a failed record is skipped, not rolled back
        try:
            for rec in records:
                number = rec.get("employee_number") if isinstance(rec, dict) else None
                if not isinstance(rec, dict):
                    results.append(
                        {
                            "employee_number": None,
                            "id": None,
                            "status": "failed",
                            "message": "Each subscriber must be a JSON object.",
                        }
                    )
                    continue
                try:
                    results.append(one(rec))
                except ApiError as exc:
                    results.append(
                        {
                            "employee_number": number,
                            "id": None,
                            "status": "failed",
                            "message": exc.message,
                            "error_code": exc.error_code,
                        }
                    )
        finally:
            state.db.execute("COMMIT")
        return envelope({"results": results})

    @app.post("/admin/v2/subscribers")
    async def bulk_create(request: Request) -> dict[str, Any]:
        check_token(request)
        records = await bulk_records(request)

        def one(rec: dict[str, Any]) -> dict[str, Any]:
            sub = state.create(rec)
            return {"employee_number": sub["employee_number"], "id": sub["id"], "status": "created"}

        return bulk(records, one)

    @app.put("/admin/v2/subscribers")
    async def bulk_update(request: Request) -> dict[str, Any]:
        check_token(request)
        records = await bulk_records(request)

        def one(rec: dict[str, Any]) -> dict[str, Any]:
            number = rec.get("employee_number")
            row = state.find(str(number), True) if number else None
            if row is None:
                raise ApiError(404, "Subscriber not found", "not_found")
            changes = {k: v for k, v in rec.items() if k != "employee_number"}
            state.update(row, changes)
            return {"employee_number": number, "id": row["id"], "status": "updated"}

        return bulk(records, one)

    # -- payroll coverages ---------------------------------------------------------------------------

    def window(start_date: str | None, end_date: str | None) -> tuple[date, date]:
        days = []
        for name, value in (("start_date", start_date), ("end_date", end_date)):
            if not value:
                raise ApiError(400, f"{name} is required.", "bad_request")
            try:
                if not _DATE_RE.match(value):
                    raise ValueError
                days.append(datetime.strptime(value, "%Y-%m-%d").date())
            except ValueError:
                raise ApiError(
                    400, f"{name} date is not a valid YYYY-MM-DD date format.", "bad_request"
                ) from None
        if days[1] < days[0]:
            raise ApiError(400, "end_date must not be before start_date.", "bad_request")
        return days[0], days[1]

    def flag(name: str, value: str | None) -> bool:
        if value is None or value == "":
            return False
        if value.lower() not in ("true", "false"):
            raise ApiError(400, f"{name} must be true or false.", "bad_request")
        return value.lower() == "true"

    def plan_year(current: str | None, previous: str | None) -> int | None:
        want_current, want_previous = flag("current", current), flag("previous", previous)
        if want_current and want_previous:
            raise ApiError(400, "Use current or previous, not both.", "bad_request")
        if want_current:
            return coverages.CURRENT_PLAN_YEAR
        return coverages.PRIOR_PLAN_YEAR if want_previous else None

    @app.get("/admin/v2/payroll_coverages_subscribers")
    async def payroll_coverages(
        request: Request,
        start_date: str | None = None,
        end_date: str | None = None,
        page: int = 1,
        per_page: int = 100,
        include_test: str | None = None,
        current: str | None = None,
        previous: str | None = None,
    ) -> dict[str, Any]:
        check_token(request)
        start, end = window(start_date, end_date)
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ApiError(400, f"per_page must be between 1 and {MAX_PER_PAGE}.", "bad_request")
        if page < 1:
            raise ApiError(400, "page must be 1 or more.", "bad_request")
        with_test = flag("include_test", include_test)
        year = plan_year(current, previous)
        total, records = state.coverages.page(start, end, page, per_page, with_test, year)

        def link(p: int) -> str:
            query = (
                f"start_date={start.isoformat()}&end_date={end.isoformat()}&page={p}&per_page={per_page}"
                f"&include_test={str(with_test).lower()}"
            )
            if year is not None:
                query += "&current=true" if year == coverages.CURRENT_PLAN_YEAR else "&previous=true"
            return f"{str(request.base_url).rstrip('/')}/admin/v2/payroll_coverages_subscribers?{query}"

        return page_of("payroll_coverages", records, total, page, per_page, link)

    @app.get("/admin/v2/payroll_coverages_subscriber/{key}")
    async def payroll_coverages_of(
        request: Request,
        key: str,
        start_date: str | None = None,
        end_date: str | None = None,
        is_custom_id: str | None = None,
        current: str | None = None,
        previous: str | None = None,
    ) -> dict[str, Any]:
        check_token(request)
        start, end = window(start_date, end_date)
        year = plan_year(current, previous)
        row = lookup(key, is_custom_id)
        records = state.coverages.for_subscriber(row["employee_number"], start, end, year)
        return envelope({"total": len(records), "payroll_coverages": records})

    # -- sandbox admin (no auth; loopback only) ------------------------------------------------------

    @app.get("/sandbox/health")
    async def health() -> dict[str, Any]:
        return envelope({"ok": True})

    @app.get("/sandbox/subscribers/{employee_number}")
    async def raw_subscriber(employee_number: str) -> dict[str, Any]:
        row = state.find(employee_number, True)
        if row is None:
            raise ApiError(404, "Subscriber not found", "not_found")
        return envelope(_row_to_subscriber(row))

    @app.get("/sandbox/coverages")
    async def raw_coverages(employee_number: str | None = None) -> dict[str, Any]:
        if not employee_number:
            raise ApiError(400, "employee_number is required.", "bad_request")
        return envelope(state.coverages.for_subscriber(employee_number))

    @app.post("/sandbox/coverages")
    async def upsert_coverages(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        items = body.get("coverages")
        if not isinstance(items, list):
            raise ApiError(400, "coverages must be a list.", "bad_request")
        try:
            results = state.coverages.upsert(items, _now())
        except ValueError as exc:
            raise ApiError(400, str(exc), "bad_request") from None
        return envelope({"ids": [r["id"] for r in results], "results": results})

    @app.get("/sandbox/changes")
    async def changes(employee_number: str | None = None) -> dict[str, Any]:
        where, args = ("WHERE employee_number = ?", [employee_number]) if employee_number else ("", [])
        rows = state.db.execute(
            f"SELECT subscriber_id, employee_number, kind, fields, changed_fields, at FROM subscriber_change"
            f" {where} ORDER BY seq",
            args,
        ).fetchall()
        return envelope(
            [
                {
                    **dict(r),
                    "fields": [f for f in r["fields"].split(",") if f],
                    "changed_fields": [f for f in r["changed_fields"].split(",") if f],
                }
                for r in rows
            ]
        )

    @app.get("/sandbox/stats")
    async def stats() -> dict[str, Any]:
        db = state.db
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM subscriber_change GROUP BY kind").fetchall())
        by_path = dict(db.execute("SELECT method || ' ' || path, COUNT(*) FROM request_log GROUP BY 1"))
        by_status = {str(k): v for k, v in db.execute("SELECT status, COUNT(*) FROM request_log GROUP BY 1")}
        return envelope(
            {
                "subscribers": db.execute("SELECT COUNT(*) FROM subscriber").fetchone()[0],
                "test_subscribers": db.execute(
                    "SELECT COUNT(*) FROM subscriber WHERE test_employee = 1"
                ).fetchone()[0],
                "creates": kinds.get("created", 0),
                "updates": kinds.get("updated", 0),
                "terminations": kinds.get("terminated", 0),
                "rehires": kinds.get("rehired", 0),
                "requests": sum(by_path.values()),
                "requests_by_path": by_path,
                "requests_by_status": by_status,
                "census_imports": db.execute("SELECT COUNT(*) FROM census_import").fetchone()[0],
            }
        )

    @app.get("/sandbox/census_imports")
    async def census_imports() -> dict[str, Any]:
        rows = state.db.execute(
            "SELECT file_name, rows, accepted, rejected, error, imported_at FROM census_import ORDER BY seq"
        ).fetchall()
        return envelope([dict(r) for r in rows])

    @app.post("/sandbox/faults")
    async def add_fault(request: Request) -> dict[str, Any]:
        return envelope(state.faults.arm(await json_body(request)))

    @app.delete("/sandbox/faults")
    async def clear_faults() -> dict[str, Any]:
        state.faults.clear()
        return envelope([])

    @app.post("/sandbox/expire_tokens")
    async def expire_tokens(request: Request) -> dict[str, Any]:
        """Every token issued so far expires now, or after ``after_requests`` more authorised calls
        (a token that runs out in the middle of a run, whatever its ``expires_in`` said)."""
        body = await json_body(request)
        try:
            after = int(body.get("after_requests", 0))
        except (TypeError, ValueError):
            raise ApiError(400, "after_requests must be an integer.", "bad_request") from None
        state.expire_tokens_after = after if after > 0 else None
        if after <= 0:
            state.expire_all_tokens()
        return envelope({"after_requests": after})

    @app.post("/sandbox/token_ttl")
    async def set_token_ttl(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        try:
            state.token_ttl = int(body["seconds"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "seconds must be an integer.", "bad_request") from None
        return envelope({"seconds": state.token_ttl})

    return app
