"""PlanSource payroll coverages: deterministic generation, the queries behind the API, sandbox upserts.

Every subscriber PlanSource knows (so not the HCM's new hires) gets 1-4 coverages in each of two plan years,
prior (2025) and current (2026). Records are a pure function of ``(seed, person index, PlanSource's
subscriber row)``; they are generated from the ``subscriber`` table of the PlanSource state, streamed in
chunks, so 1,000,000 employees (5.2M records) take about 80 s at flat memory.

With ``p200 = (i - 1) % 200`` and ``p100 = (i - 1) % 100`` (the same convention as the HCM generator):

==================== ================= ===========================================================
case                 positions         what
==================== ================= ===========================================================
``unknown_employee`` p200 == 12        current-year medical record, subscriber_code ``X`` + digits
``unmapped_code``    p200 == 13        current-year slot-0 record is Accident, ``ACC-INDEMNITY``
``negative_amount``  p200 == 14        current-year medical record, subscriber_premium ``-12.50``
``end_before_start`` p200 == 15        current-year medical record ends 2025-12-15, starts 2026-01-01
life event           p100 in LIFE_...  current-year medical in two records (old one ``current=false``)
terminated           HCM status T or R current-year coverages carry termination_date and reason
test employee        HCM test_subscriber every record ``test_employee=true``
==================== ================= ===========================================================

The four failing cases sit on people with no other special category; their record id is
``PC26{i:07d}00`` (see :func:`special_coverages`).
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

PRIOR_PLAN_YEAR_START = date(2025, 1, 1)
PRIOR_PLAN_YEAR_END = date(2025, 12, 31)
CURRENT_PLAN_YEAR_START = date(2026, 1, 1)
CURRENT_PLAN_YEAR_END = date(2026, 12, 31)
PRIOR_PLAN_YEAR = PRIOR_PLAN_YEAR_START.year
CURRENT_PLAN_YEAR = CURRENT_PLAN_YEAR_START.year
# updated_at ("the payroll change date") of generated records, per plan year (UTC dates, inclusive).
UPDATE_WINDOWS: dict[int, tuple[date, date]] = {
    PRIOR_PLAN_YEAR: (date(2024, 10, 1), date(2025, 6, 30)),
    CURRENT_PLAN_YEAR: (date(2025, 10, 1), date(2026, 10, 31)),
}
GENERATED_BEFORE = datetime(2026, 11, 1, tzinfo=UTC)  # every generated updated_at is earlier

SPECIAL_POSITIONS: dict[str, int] = {  # p200 -> the failing record is the person's current-year slot 0
    "unknown_employee": 12,
    "unmapped_code": 13,
    "negative_amount": 14,
    "end_before_start": 15,
}
LIFE_EVENT_POSITIONS = frozenset({17, 37, 57, 77, 97})  # p100: 5 %
UNMAPPED_MAPPING_CODE = "ACC-INDEMNITY"
NEGATIVE_PREMIUM = "-12.50"
ORGANIZATION_ID = "41187"
LEVELS = ("Employee Only", "Employee + Spouse", "Employee + Child(ren)", "Family")

PAY_FREQUENCIES: dict[str | None, tuple[str, int]] = {
    "ORG-PAY-BIWEEKLY": ("Biweekly (26 per year)", 26),
    "ORG-PAY-WEEKLY": ("Weekly (52 per year)", 52),
    "ORG-PAY-SEMIMONTHLY": ("Semi-Monthly (24 per year)", 24),
    "ORG-PAY-MONTHLY": ("Monthly (12 per year)", 12),
}
DEFAULT_PAY_FREQUENCY = PAY_FREQUENCIES["ORG-PAY-BIWEEKLY"]


@dataclass(frozen=True, slots=True)
class Plan:
    mapping_code: str
    benefit_name: str
    lookup_code: str
    plan_name: str
    company: str
    group_number: str
    partner_code_1: str
    tax_treatment: str
    employee_annual: tuple[int, int, int, int]  # dollars a year by LEVELS (prior plan year)
    employer_annual: tuple[int, int, int, int]


PLANS: dict[str, Plan] = {
    p.mapping_code: p
    for p in (
        Plan("MED-PPO", "Medical", "medical", "BCBS PPO 500", "Blue Cross Blue Shield", "BCBS-77120",
             "ER-MED", "Pre-Tax", (1800, 4200, 3600, 6000), (6000, 10000, 9000, 14000)),
        Plan("MED-HDHP", "Medical", "medical", "BCBS HDHP 3000", "Blue Cross Blue Shield", "BCBS-77121",
             "ER-MED", "Pre-Tax", (900, 2400, 2100, 3600), (5200, 8800, 8000, 12500)),
        Plan("DEN-BASIC", "Dental", "dental", "Delta Dental Basic", "Delta Dental", "DD-40311", "ER-DEN",
             "Pre-Tax", (240, 520, 480, 800), (120, 240, 220, 360)),
        Plan("DEN-PLUS", "Dental", "dental", "Delta Dental Plus", "Delta Dental", "DD-40312", "ER-DEN",
             "Pre-Tax", (420, 900, 840, 1380), (120, 240, 220, 360)),
        Plan("VIS", "Vision", "vision", "VSP Choice", "VSP", "VSP-10233", "ER-VIS", "Pre-Tax",
             (96, 190, 180, 300), (0, 0, 0, 0)),
        Plan("LIFE-SUPP", "Supplemental Life", "supp_life", "MetLife Supplemental Life", "MetLife",
             "ML-55821", "ER-LIFE", "Post-Tax", (0, 0, 0, 0), (0, 0, 0, 0)),
        Plan("FSA-HC", "Health Care FSA", "fsa", "Health Care FSA", "WEX", "WEX-3307", "ER-FSA", "Pre-Tax",
             (0, 0, 0, 0), (0, 0, 0, 0)),
        Plan("HSA", "Health Savings Account", "hsa", "HealthEquity HSA", "HealthEquity", "HEQ-9920",
             "ER-HSA", "Pre-Tax", (0, 0, 0, 0), (500, 500, 1000, 1000)),
        Plan(UNMAPPED_MAPPING_CODE, "Accident", "accident", "Aflac Accident Indemnity", "Aflac", "AF-1201",
             "ER-ACC", "Post-Tax", (156, 290, 270, 410), (0, 0, 0, 0)),
    )
}  # fmt: skip

# Record fields, in the order the API answers them (``changed_fields`` follows).
FIELDS: tuple[str, ...] = (
    "id", "subscriber_code", "first_name", "middle_name", "last_name", "ssn", "subscriber_status",
    "subscriber_pay_frequency", "subscriber_total_paydays", "organization_id", "org_plan_year_starts",
    "org_plan_year_ends", "benefit_name", "benefit_lookup_code", "plan_name", "coverage_level",
    "benefit_company", "subscriber_premium", "org_premium", "subscriber_pretax_premium",
    "subscriber_posttax_premium", "tax_treatment", "imputed_income", "dp_sub_imputed_income",
    "dp_org_imputed_income", "volume", "org_fsa_amount", "subscriber_fsa_amount", "original_effective_date",
    "change_effective_date", "termination_date", "termination_reason", "plan_payroll_mapping_code",
    "plan_group_number", "plan_partner_code_1", "plan_partner_code_2", "current", "created_at", "updated_at",
    "test_employee",
)  # fmt: skip
MONEY_FIELDS = (
    "subscriber_premium", "org_premium", "subscriber_pretax_premium", "subscriber_posttax_premium",
    "imputed_income", "dp_sub_imputed_income", "dp_org_imputed_income", "volume", "org_fsa_amount",
    "subscriber_fsa_amount",
)  # fmt: skip
BOOL_FIELDS = ("current", "test_employee")
DATE_FIELDS = ("org_plan_year_starts", "org_plan_year_ends", "original_effective_date",
               "change_effective_date", "termination_date")  # fmt: skip
STORED = (*FIELDS, "changed_fields", "plan_year")

_INTEGER_FIELDS = (*BOOL_FIELDS, "subscriber_total_paydays")
_COLUMNS_SQL = ", ".join(f"{f} {'INTEGER' if f in _INTEGER_FIELDS else 'TEXT'}" for f in FIELDS)
TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS payroll_coverage (
    seq INTEGER PRIMARY KEY,
    {_COLUMNS_SQL},
    changed_fields TEXT NOT NULL DEFAULT '',
    plan_year INTEGER NOT NULL
);
"""
# updated_at first: the window filter and the page order; the trailing columns make it covering.
INDEX_SQL = """
CREATE UNIQUE INDEX IF NOT EXISTS payroll_coverage_id ON payroll_coverage (id);
CREATE INDEX IF NOT EXISTS payroll_coverage_updated
    ON payroll_coverage (updated_at, id, test_employee, plan_year);
CREATE INDEX IF NOT EXISTS payroll_coverage_subscriber ON payroll_coverage (subscriber_code);
"""
DROP_INDEX_SQL = """
DROP INDEX IF EXISTS payroll_coverage_id;
DROP INDEX IF EXISTS payroll_coverage_updated;
DROP INDEX IF EXISTS payroll_coverage_subscriber;
"""
_INSERT_SQL = f"INSERT INTO payroll_coverage ({', '.join(STORED)}) VALUES ({', '.join('?' * len(STORED))})"
CHUNK = 5000


def coverage_id(plan_year: int, i: int, slot: int, version: int = 0) -> str:
    """Generated record id: plan year, person index, benefit slot (0 = medical), version (life events)."""
    return f"PC{plan_year % 100:02d}{i:07d}{slot}{version}"


def special_coverages(employees: int) -> dict[str, list[str]]:
    """Coverage ids per failing category (disjoint; each non-empty from 16 employees on)."""
    return {
        name: [coverage_id(CURRENT_PLAN_YEAR, i, 0) for i in range(pos + 1, employees + 1, 200)]
        for name, pos in SPECIAL_POSITIONS.items()
    }


def life_event_people(employees: int) -> list[str]:
    """Employee numbers whose current-year medical has a life event (two records)."""
    return [f"E{i:06d}" for i in range(1, employees + 1) if (i - 1) % 100 in LIFE_EVENT_POSITIONS]


def iso_date(value: str | None) -> str | None:
    """The calendar date in any of the forms '2026-01-01', '2026/01/01', '2026-01-01T00:00:00.000Z'."""
    return None if value is None else value[:10].replace("/", "-")


# ---------------------------------------------------------------------------------------------- generation


def _fmt(iso: str | None, form: int) -> str | None:
    if iso is None or form == 0:
        return iso
    if form == 1:
        return iso.replace("-", "/")
    return iso + "T00:00:00.000Z"


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _per_period(annual_dollars: float, paydays: int) -> int:
    return round(annual_dollars * 100 / paydays)


def _first_of_next_month(iso: str) -> str:
    y, m = int(iso[:4]), int(iso[5:7])
    return f"{y + m // 12}-{m % 12 + 1:02d}-01"


_DAY0 = date(2024, 10, 1)
_DAYS = [(_DAY0 + timedelta(days=d)).isoformat() for d in range((date(2026, 12, 31) - _DAY0).days + 1)]
_DAY_INDEX = {d: n for n, d in enumerate(_DAYS)}


def _stamp(day: str, seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    return f"{day} {h:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _plus_days(iso: str, days: int) -> str:
    return _DAYS[_DAY_INDEX[iso] + days]


def _enrolled_at(rng: random.Random, year: int, original_eff: str) -> str:
    """When the person saved this plan year's elections: mostly open enrollment, some later."""
    start, end = UPDATE_WINDOWS[year]
    if original_eff > f"{year}-01-01":  # hired during the plan year: enrolled at hire
        day = min(_DAY_INDEX[end.isoformat()], _DAY_INDEX[original_eff] - 20 + int(rng.random() * 15))
        return _stamp(_DAYS[max(day, _DAY_INDEX[start.isoformat()])], 28_800 + int(rng.random() * 36_000))
    first = _DAY_INDEX[start.isoformat()]
    if rng.random() < 0.8:  # open enrollment: Oct 1 - Dec 15
        day = first + int(rng.random() * 76)
    else:
        last = _DAY_INDEX[end.isoformat()]
        day = first + 76 + int(rng.random() * (last - first - 75))
    return _stamp(_DAYS[day], int(rng.random() * 86_400))


_SUB_SQL = (
    "SELECT seq, employee_number, first_name, middle_name, last_name, ssn, subscriber_status, org_payroll_id,"
    " hire_date, original_hire_date, termination_date, termination_reason, test_employee"
    " FROM subscriber WHERE seq > ? ORDER BY seq LIMIT ?"
)
_SPECIAL_BY_P200 = {pos: name for name, pos in SPECIAL_POSITIONS.items()}


def person_coverages(sub: tuple[Any, ...], seed: int = 42) -> list[tuple[Any, ...]]:
    """All generated records (STORED column order) for one PlanSource subscriber row (see _SUB_SQL)."""
    (_, number, first, middle, last, ssn, status, payroll_id, hire, _orig_hire, term_date, term_reason,
     test) = sub  # fmt: skip
    i = int(number[1:])
    rng = random.Random((seed * 1_000_000_007 + i) * 31 + 17)
    freq, paydays = PAY_FREQUENCIES.get(payroll_id, DEFAULT_PAY_FREQUENCY)
    special = _SPECIAL_BY_P200.get((i - 1) % 200)
    life_event = (i - 1) % 100 in LIFE_EVENT_POSITIONS and special is None and term_date is None
    original = _first_of_next_month(hire) if hire else "2020-01-01"
    test_flag = int(bool(test))
    out: list[tuple[Any, ...]] = []
    for year in (PRIOR_PLAN_YEAR, CURRENT_PLAN_YEAR):
        factor = 1.0 if year == PRIOR_PLAN_YEAR else 1.06
        y_start, y_end = f"{year}-01-01", f"{year}-12-31"
        change_eff = max(y_start, original)
        enrolled = _enrolled_at(rng, year, original)
        if i == 1:  # pins each plan year's earliest change to the first day of its window
            enrolled = f"{UPDATE_WINDOWS[year][0].isoformat()} 08:00:00"
        # Benefits: medical, dental, vision, then HSA (with an HDHP) or FSA / supplemental life.
        hdhp = rng.random() < 0.3
        codes = [
            "MED-HDHP" if hdhp else "MED-PPO",
            "DEN-PLUS" if rng.random() < 0.4 else "DEN-BASIC",
            "VIS",
            "HSA" if hdhp else ("FSA-HC" if rng.random() < 0.5 else "LIFE-SUPP"),
        ]
        r = rng.random()
        count = 1 if r < 0.2 else 2 if r < 0.45 else 3 if r < 0.75 else 4
        level_idx = min(3, int(rng.random() * 4.6))  # Family a little more often
        post_tax_medical = rng.random() < 0.04
        terminated = year == CURRENT_PLAN_YEAR and term_date is not None
        if terminated:
            month = i % 9 + 1
            end_day = _plus_days(f"{year}-{month + 1:02d}-01", -1)
            term_stamp = _stamp(_plus_days(end_day, i % 10), 32_400 + i % 3600)
        for slot in range(count):
            code = codes[slot]
            # FSA and supplemental life are employee-only; an HSA is self-only or family.
            level = level_idx if slot < 3 else 0
            if code == "HSA":
                level = 3 if level_idx else 0
            versions = [(0, level, change_eff, None, 1)]  # (version, level, start, end, current)
            if life_event and year == CURRENT_PLAN_YEAR and slot == 0:
                new_level = level + 1 if level < 3 else 1
                new_start = f"{year}-{2 + i % 8:02d}-01"
                versions = [
                    (0, level, change_eff, _plus_days(new_start, -1), 0),
                    (1, new_level, new_start, None, 1),
                ]
                event_stamp = _stamp(_plus_days(new_start, -(i % 20)), 36_000 + slot)
            for version, lvl, start, end, current in versions:
                plan = PLANS[code]
                volume = fsa_sub = fsa_org = None
                if code == "LIFE-SUPP":
                    amount = 25_000 * (1 + int(rng.random() * 8))
                    volume = _money(amount * 100)
                    ee = _per_period(amount / 1000 * 1.8 * factor, paydays)
                    er = 0
                elif code in ("FSA-HC", "HSA"):
                    election = 100 * (
                        5 + int(rng.random() * (28 if code == "FSA-HC" else 40 + 40 * (lvl > 0)))
                    )
                    fsa_sub = _money(election * 100)
                    org_annual = plan.employer_annual[lvl]
                    fsa_org = _money(org_annual * 100)
                    ee = _per_period(election, paydays)
                    er = _per_period(org_annual, paydays)
                else:
                    ee = _per_period(plan.employee_annual[lvl] * factor, paydays)
                    er = _per_period(plan.employer_annual[lvl] * factor, paydays)
                tax = plan.tax_treatment
                if slot == 0 and post_tax_medical:
                    tax = "Post-Tax"
                form = (i + slot + version) % 3
                row_end, reason = end, None
                created = updated = enrolled
                if version == 0 and len(versions) == 2:
                    updated = event_stamp  # closed by the life event
                elif version == 1:
                    created = updated = event_stamp
                if terminated:
                    row_end, reason = end_day, term_reason or "Voluntary Resignation"
                    updated = term_stamp
                subscriber_code, premium = number, _money(ee)
                if year == CURRENT_PLAN_YEAR and slot == 0 and special is not None:
                    if special == "unknown_employee":
                        subscriber_code = "X" + number[1:]
                    elif special == "unmapped_code":
                        plan = PLANS[UNMAPPED_MAPPING_CODE]
                        premium = _money(_per_period(plan.employee_annual[lvl] * factor, paydays))
                        er, tax, volume, fsa_sub, fsa_org = 0, plan.tax_treatment, None, None, None
                    elif special == "negative_amount":
                        premium, tax = NEGATIVE_PREMIUM, "Pre-Tax"
                    else:  # end_before_start
                        row_end = "2025-12-15"
                pretax, posttax = (premium, "0.00") if tax == "Pre-Tax" else ("0.00", premium)
                out.append(
                    (
                        coverage_id(year, i, slot, version),
                        subscriber_code,
                        first,
                        middle,
                        last,
                        ssn,
                        status,
                        freq,
                        paydays,
                        ORGANIZATION_ID,
                        _fmt(y_start, form),
                        _fmt(y_end, form),
                        plan.benefit_name,
                        plan.lookup_code,
                        plan.plan_name,
                        LEVELS[lvl],
                        plan.company,
                        premium,
                        _money(er),
                        pretax,
                        posttax,
                        tax,
                        "0.00",
                        "0.00",
                        "0.00",
                        volume,
                        fsa_org,
                        fsa_sub,
                        _fmt(original, form),
                        _fmt(start, form),
                        _fmt(row_end, form),
                        reason,
                        plan.mapping_code,
                        plan.group_number,
                        plan.partner_code_1,
                        "DED",
                        current,
                        created,
                        updated,
                        test_flag,
                        "",
                        year,
                    )
                )
    return out


def seed_coverages_into(conn: sqlite3.Connection, seed: int = 42) -> int:
    """Generate the coverages of every row of ``subscriber`` (replacing any). Returns the record count."""
    conn.executescript(TABLE_SQL + DROP_INDEX_SQL)
    conn.execute("DELETE FROM payroll_coverage")
    count, last_seq = 0, 0
    conn.execute("BEGIN")
    while rows := conn.execute(_SUB_SQL, (last_seq, CHUNK)).fetchall():
        last_seq = rows[-1][0]
        batch = [rec for row in rows for rec in person_coverages(tuple(row), seed)]
        conn.executemany(_INSERT_SQL, batch)
        count += len(batch)
    conn.execute("COMMIT")
    conn.executescript(INDEX_SQL)
    return count


def seed_coverages(state_path: Path, seed: int = 42) -> int:
    """Generate the coverages into an already seeded PlanSource state file."""
    conn = sqlite3.connect(state_path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        return seed_coverages_into(conn, seed)
    finally:
        conn.close()


def coverage_counts(state_path: Path) -> dict[str, int]:
    """Record counts, for tests: total, per plan year, test-employee records, superseded (current=false)."""
    conn = sqlite3.connect(state_path)
    try:
        total, prior, current, test, superseded = conn.execute(
            "SELECT COUNT(*), SUM(plan_year = ?), SUM(plan_year = ?), SUM(test_employee), SUM(current = 0)"
            " FROM payroll_coverage",
            (PRIOR_PLAN_YEAR, CURRENT_PLAN_YEAR),
        ).fetchone()
    finally:
        conn.close()
    return {
        "total": total,
        "prior": prior or 0,
        "current": current or 0,
        "test_employee": test or 0,
        "superseded": superseded or 0,
    }


# ---------------------------------------------------------------------------------------------- queries


def row_to_record(row: sqlite3.Row) -> dict[str, Any]:
    out = {k: row[k] for k in FIELDS}
    for k in BOOL_FIELDS:
        out[k] = None if out[k] is None else bool(out[k])
    out["changed_fields"] = [f for f in (row["changed_fields"] or "").split(",") if f]
    return out


def _where(start: date, end: date, include_test: bool, plan_year: int | None) -> tuple[str, list[Any]]:
    clauses = ["updated_at >= ?", "updated_at < ?"]
    args: list[Any] = [start.isoformat(), (end + timedelta(days=1)).isoformat()]
    if not include_test:
        clauses.append("test_employee = 0")
    if plan_year is not None:
        clauses.append("plan_year = ?")
        args.append(plan_year)
    return " AND ".join(clauses), args


class CoverageQueries:
    """Paged reads over one connection; page boundaries are remembered so that walking the pages in order
    costs one index range each, not an ever longer OFFSET. Any write must call :meth:`changed`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.version = 0
        self._totals: dict[tuple[Any, ...], int] = {}
        self._after: dict[tuple[Any, ...], tuple[str, str]] = {}  # (filters, per_page, page) -> last key

    def changed(self) -> None:
        self.version += 1
        self._totals.clear()
        self._after.clear()

    def page(
        self,
        start: date,
        end: date,
        page: int,
        per_page: int,
        include_test: bool = False,
        plan_year: int | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        where, args = _where(start, end, include_test, plan_year)
        key = (start, end, include_test, plan_year)
        total = self._totals.get(key)
        if total is None:
            (total,) = self.db.execute(
                f"SELECT COUNT(*) FROM payroll_coverage WHERE {where}", args
            ).fetchone()
            if len(self._totals) > 256:
                self._totals.clear()
            self._totals[key] = total
        after = self._after.get((*key, per_page, page - 1))
        if after is not None:
            # (updated_at, id) > last key replaces updated_at >= start (it implies it), so that SQLite seeks
            # straight to the key in the index instead of walking from the start of the window.
            rest = where.split(" AND ", 1)[1]  # everything but updated_at >= start
            sql = (
                f"SELECT * FROM payroll_coverage WHERE (updated_at, id) > (?, ?) AND {rest}"
                " ORDER BY updated_at, id LIMIT ?"
            )
            rows = self.db.execute(sql, [*after, *args[1:], per_page]).fetchall()
        else:
            sql = f"SELECT * FROM payroll_coverage WHERE {where} ORDER BY updated_at, id LIMIT ? OFFSET ?"
            rows = self.db.execute(sql, [*args, per_page, (page - 1) * per_page]).fetchall()
        if rows:
            if len(self._after) > 4096:
                self._after.clear()
            self._after[(*key, per_page, page)] = (rows[-1]["updated_at"], rows[-1]["id"])
        return total, [row_to_record(r) for r in rows]

    def for_subscriber(
        self,
        employee_number: str,
        start: date | None = None,
        end: date | None = None,
        plan_year: int | None = None,
    ) -> list[dict[str, Any]]:
        clauses, args = ["subscriber_code = ?"], [employee_number]
        if start is not None and end is not None:
            clauses += ["updated_at >= ?", "updated_at < ?"]
            args += [start.isoformat(), (end + timedelta(days=1)).isoformat()]
        if plan_year is not None:
            clauses.append("plan_year = ?")
            args.append(plan_year)
        rows = self.db.execute(
            f"SELECT * FROM payroll_coverage WHERE {' AND '.join(clauses)} ORDER BY id", args
        ).fetchall()
        return [row_to_record(r) for r in rows]

    # -- sandbox writes ---------------------------------------------------------------------------

    def upsert(self, items: list[Any], now: str) -> list[dict[str, str]]:
        """Apply partial records (keyed by ``id``, or by subscriber_code + plan_payroll_mapping_code +
        change_effective_date); updated_at = ``now``. One transaction; a bad item raises ValueError (the
        message names fields, never values) and nothing is written."""
        results: list[dict[str, str]] = []
        self.db.execute("BEGIN")
        try:
            for item in items:
                results.append(self._upsert_one(item, now))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        self.changed()
        return results

    def _upsert_one(self, item: Any, now: str) -> dict[str, str]:
        if not isinstance(item, dict):
            raise ValueError("Each coverage must be a JSON object.")
        unknown = sorted(set(item) - set(FIELDS) - {"changed_fields"})
        if unknown:
            raise ValueError(f"Unknown field(s): {', '.join(unknown)}.")
        fields = _clean(item)
        fields.pop("changed_fields", None)
        fields.pop("created_at", None)
        fields.pop("updated_at", None)
        row = self._find(fields)
        if row is None:
            return self._insert(fields, now)
        if "subscriber_premium" in fields and not (
            {"subscriber_pretax_premium", "subscriber_posttax_premium"} & set(fields)
        ):
            tax = fields.get("tax_treatment", row["tax_treatment"])
            prem = fields["subscriber_premium"]
            pre_post = (prem, "0.00") if tax != "Post-Tax" else ("0.00", prem)
            fields["subscriber_pretax_premium"], fields["subscriber_posttax_premium"] = pre_post
        changed = [k for k, v in fields.items() if k != "id" and row[k] != v]
        values = {k: v for k, v in fields.items() if k != "id"}
        if "change_effective_date" in values:
            values["plan_year"] = _plan_year(values["change_effective_date"])
        values.update(updated_at=now, changed_fields=",".join(changed))
        self.db.execute(
            f"UPDATE payroll_coverage SET {', '.join(f'{k} = ?' for k in values)} WHERE seq = ?",
            [*values.values(), row["seq"]],
        )
        return {"id": row["id"], "status": "updated"}

    def _find(self, fields: dict[str, Any]) -> sqlite3.Row | None:
        if fields.get("id"):
            return self.db.execute("SELECT * FROM payroll_coverage WHERE id = ?", (fields["id"],)).fetchone()
        need = ("subscriber_code", "plan_payroll_mapping_code", "change_effective_date")
        if not all(fields.get(k) for k in need):
            raise ValueError(
                "Each coverage needs an id, or subscriber_code, plan_payroll_mapping_code and"
                " change_effective_date."
            )
        rows = self.db.execute(
            "SELECT * FROM payroll_coverage WHERE subscriber_code = ? AND plan_payroll_mapping_code = ?"
            " ORDER BY seq",
            (fields["subscriber_code"], fields["plan_payroll_mapping_code"]),
        ).fetchall()
        wanted = iso_date(fields["change_effective_date"])
        matches = [r for r in rows if iso_date(r["change_effective_date"]) == wanted]
        return matches[-1] if matches else None

    def _insert(self, fields: dict[str, Any], now: str) -> dict[str, str]:
        code, number = fields.get("plan_payroll_mapping_code"), fields.get("subscriber_code")
        if not (code and number and fields.get("change_effective_date")):
            raise ValueError(
                "A new coverage needs subscriber_code, plan_payroll_mapping_code and change_effective_date."
            )
        template = self.db.execute(
            "SELECT * FROM payroll_coverage WHERE subscriber_code = ?"
            " ORDER BY plan_payroll_mapping_code = ? DESC, seq DESC LIMIT 1",
            (number, code),
        ).fetchone()
        values: dict[str, Any] = {k: None for k in FIELDS}
        if template is not None:
            same_plan = template["plan_payroll_mapping_code"] == code
            person = (*FIELDS[FIELDS.index("first_name") : FIELDS.index("org_plan_year_starts")],
                      "original_effective_date", "test_employee")  # fmt: skip
            plan_fields = FIELDS[FIELDS.index("benefit_name") : FIELDS.index("current")]
            carry = (*person, *plan_fields) if same_plan else person
            values.update({k: template[k] for k in carry})
        else:
            sub = self.db.execute(
                "SELECT first_name, middle_name, last_name, ssn, subscriber_status, org_payroll_id,"
                " test_employee FROM subscriber WHERE employee_number = ?",
                (number,),
            ).fetchone()
            if sub is not None:
                freq, paydays = PAY_FREQUENCIES.get(sub["org_payroll_id"], DEFAULT_PAY_FREQUENCY)
                values.update({k: sub[k] for k in ("first_name", "middle_name", "last_name", "ssn")})
                values.update(
                    subscriber_status=sub["subscriber_status"],
                    subscriber_pay_frequency=freq,
                    subscriber_total_paydays=paydays,
                    test_employee=sub["test_employee"],
                )
            values["organization_id"] = ORGANIZATION_ID
        plan = PLANS.get(code)
        if plan is not None and (template is None or template["plan_payroll_mapping_code"] != code):
            values.update(
                benefit_name=plan.benefit_name,
                benefit_lookup_code=plan.lookup_code,
                plan_name=plan.plan_name,
                benefit_company=plan.company,
                tax_treatment=plan.tax_treatment,
                plan_group_number=plan.group_number,
                plan_partner_code_1=plan.partner_code_1,
                plan_partner_code_2="DED",
            )
        year = _plan_year(fields["change_effective_date"])
        values.update(
            org_plan_year_starts=f"{year}-01-01",
            org_plan_year_ends=f"{year}-12-31",
            termination_date=None,
            termination_reason=None,
            current=1,
            test_employee=values["test_employee"] or 0,
        )
        for k in ("subscriber_premium", "org_premium", "imputed_income", "dp_sub_imputed_income",
                  "dp_org_imputed_income"):  # fmt: skip
            values[k] = values[k] or "0.00"
        values.update({k: v for k, v in fields.items() if k != "id"})
        values["original_effective_date"] = (
            values["original_effective_date"] or values["change_effective_date"]
        )
        if not ({"subscriber_pretax_premium", "subscriber_posttax_premium"} & set(fields)):
            prem = values["subscriber_premium"]
            post = values["tax_treatment"] == "Post-Tax"
            values["subscriber_pretax_premium"], values["subscriber_posttax_premium"] = (
                ("0.00", prem) if post else (prem, "0.00")
            )
        (seq,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM payroll_coverage").fetchone()
        values["id"] = fields.get("id") or f"PCN{seq:09d}"
        values.update(created_at=now, updated_at=now, changed_fields="", plan_year=year)
        self.db.execute(_INSERT_SQL, [values[k] for k in STORED])
        return {"id": values["id"], "status": "created"}


def _plan_year(value: str) -> int:
    return int(iso_date(value)[:4])  # type: ignore[index]


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    """Normalize a partial record: money to 2-decimal strings, booleans to 0/1, dates checked."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        if value is None:
            out[key] = None
        elif key in BOOL_FIELDS:
            if isinstance(value, str):
                value = value.strip().lower() in ("true", "1", "yes")
            out[key] = int(bool(value))
        elif key in MONEY_FIELDS:
            try:
                out[key] = f"{Decimal(str(value)):.2f}"
            except InvalidOperation:
                raise ValueError(f"{key} must be a number.") from None
        elif key == "subscriber_total_paydays":
            try:
                out[key] = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"{key} must be an integer.") from None
        elif key == "changed_fields":
            continue
        else:
            if not isinstance(value, str | int | float):
                raise ValueError(f"{key} must be a string.")
            value = str(value)
            if key in DATE_FIELDS:
                try:
                    datetime.strptime(iso_date(value) or "", "%Y-%m-%d")
                except ValueError:
                    raise ValueError(f"{key} date is not a valid date.") from None
            out[key] = value
    return out
