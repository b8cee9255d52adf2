"""A deterministic Relius-style recordkeeper database (``include/sql/recordkeeper_schema.sql``).

Plan ``k`` (``P0001``, ...) is a pure function of ``(seed, k)``; participant ``j`` of plan ``k``
(``P0001-000001``, ...) of ``(seed, k, j)`` and of the participants before it in the same plan, so the first
N plans, and the first N participants of a plan, are the same whatever the total size. Everything is dated
relative to the fixed :data:`RK_REFERENCE_DATE` (2026-11-01), never to today.

Special plans, by position ``p10 = (k - 1) % 10`` (each non-empty from 6 plans on; P0001 is ordinary):

============================= ===== ==============================================================
case                          p10   what
============================= ===== ==============================================================
``no_ein``                    1     ``employer_ein`` NULL
``fund_without_ticker``       2     one open fund (a collective trust, the last fund) with ticker NULL
``variable_pay``              3     ``pay_frequency_code`` 'V'
``default_investment_locked`` 3     (iJoin side) ``default_investment_never_from_recordkeeper``; iJoin's
                                    default investment is another open fund than the recordkeeper's
``lineup_changed``            4     the recordkeeper added a fund (the last one, no money in it yet) and
                                    closed one (F002: is_open 0, balances kept, no allocations); iJoin's
                                    active version still has the old line-up
``new_plan``                  5     in iJoin as a plan being set up (status ``setup``, no version)
============================= ===== ==============================================================

Special participants, in every plan, by position ``q25 = (j - 1) % 25`` (each non-empty from 21 per plan):

============================ ============ ============================================================
case                         q25          what
============================ ============ ============================================================
``allocations_not_100``      5            allocations sum to 95.000
``missing_salary``           6            annual_salary NULL, computed_compensation set
``no_salary_at_all``         7            annual, computed and prior-year compensation NULL (salary 0)
``prior_year_only``          8            only prior_year_compensation set
``variable_pay_participant`` 9            (variable-pay plans only) payroll of the last 3 months: 6
                                          biweekly + 2 weekly ('B' wins); 10 weekly payrolls in
                                          2026-04-24..2026-06-26 ('W' would win without the cutoff)
``terminated``               10, 20       status T (10: terminated 2026-09-18, 20: in 2025)
``on_leave``                 13           status L
``retired``                  17           status R
============================ ============ ============================================================

Payroll: every participant has the payrolls of their frequency from :data:`PAYROLL_HISTORY_START`
(2026-07-15) to the reference date (biweekly: 8 rows, 7 of them in the last 3 months), none before hire
or after termination. In a variable-pay plan, ordinary participants are paid at one frequency each (B, W, S
or M), so the cutoff cannot change theirs; the variable-pay participant has no payroll in
2026-06-27..2026-08-13, so "3 months" read as 90 or 92 days, or from 2026-08-01, gives the same answer.
Positions 2-4 of P0001 (``P0001-000002``..``-000004``) are ordinary: iJoin's seeded pending elections are
theirs.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hub_sandbox.generator import FIRST_NAMES, LAST_NAMES, valid_ssn

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "sql" / "recordkeeper_schema.sql"
RK_REFERENCE_DATE = date(2026, 11, 1)
RK_REFERENCE_TIME = datetime(2026, 11, 1, 0, 0, 0, tzinfo=UTC)
BALANCE_AS_OF = date(2026, 10, 31)
THREE_MONTHS_START = date(2026, 8, 1)  # the last 3 months before the reference date: [08-01, 11-01)
PAYROLL_HISTORY_START = date(2026, 7, 15)
CHUNK = 5000
MAX_PLANS = 700  # SSNs are valid_ssn(k * 1_000_000 + j): unique while k * 1e6 < the SSN space
MAX_PARTICIPANTS_PER_PLAN = 999_999

PLAN_POSITIONS: dict[str, int] = {  # p10
    "no_ein": 1,
    "fund_without_ticker": 2,
    "variable_pay": 3,
    "default_investment_locked": 3,
    "lineup_changed": 4,
    "new_plan": 5,
}
PARTICIPANT_POSITIONS: dict[str, frozenset[int]] = {  # q25
    "allocations_not_100": frozenset({5}),
    "missing_salary": frozenset({6}),
    "no_salary_at_all": frozenset({7}),
    "prior_year_only": frozenset({8}),
    "variable_pay_participant": frozenset({9}),  # in variable-pay plans only
    "terminated": frozenset({10, 20}),
    "on_leave": frozenset({13}),
    "retired": frozenset({17}),
}
# Plan-level pay frequency by p10 (3 is the variable-pay position).
PLAN_FREQUENCIES = ("B", "S", "W", "V", "B", "M", "B", "S", "B", "W")
PERIODS_PER_YEAR = {"W": 52, "B": 26, "S": 24, "M": 12}
MONEY_SOURCES = ("EE_PRETAX", "EE_ROTH", "EE_AFTERTAX", "ER_MATCH")

EMPLOYERS = (
    "Northwind Logistics",
    "Bluebird Health Partners",
    "Cedar Ridge Manufacturing",
    "Harborview Foods",
    "Summit Engineering Group",
    "Lakeshore Credit Union",
    "Prairie Wind Energy",
    "Redwood Dental Associates",
    "Granite State Builders",
    "Silverline Software",
    "Maple Street Hospitality",
    "Ironwood Freight",
    "Clearwater Labs",
    "Keystone Insurance Services",
    "Willow Creek Schools Foundation",
    "Copperfield Retail",
)
CONTACT_TYPES = ("primary_administrator", "employer_sponsor", "primary_plan_contact")
# (fund name, ticker, asset class); fictional funds.
CORE_FUNDS = (
    ("Evergreen 500 Index Fund", "EVSPX", "Large Cap Equity"),
    ("Evergreen Total Bond Index Fund", "EVTBX", "Fixed Income"),
    ("Harbor Lane Growth Fund", "HLGRX", "Large Cap Growth"),
    ("Harbor Lane Value Fund", "HLVAX", "Large Cap Value"),
    ("Meridian Mid Cap Index Fund", "MRMCX", "Mid Cap Equity"),
    ("Meridian Small Cap Fund", "MRSCX", "Small Cap Equity"),
    ("Atlas International Equity Fund", "ATIEX", "International Equity"),
    ("Atlas Emerging Markets Fund", "ATEMX", "Emerging Markets"),
    ("Keel Stable Value Fund", "KLSVX", "Stable Value"),
    ("Keel Government Money Market Fund", "KLMXX", "Money Market"),
    ("Crestline Real Estate Fund", "CRREX", "Real Estate"),
    ("Crestline Inflation-Protected Bond Fund", "CRIPX", "Fixed Income"),
)
TARGET_DATE_FUNDS = tuple(
    (f"Pathway {year} Target Date Fund", f"PWT{year % 100:02d}X", "Target Date")
    for year in range(2030, 2070, 5)
)
NO_TICKER_FUND = ("Keel Stable Value Collective Trust", None, "Stable Value")
ADDED_FUND = ("Evergreen ESG Leaders Index Fund", "EVESX", "Large Cap Equity")
DEFAULT_TARGET_DATE = "Pathway 2045 Target Date Fund"


# ---------------------------------------------------------------------------------------------- ids, cases


def plan_id(k: int) -> str:
    return f"P{k:04d}"


def plan_index(pid: str) -> int:
    return int(pid[1:5])


def participant_id(k: int, j: int) -> str:
    return f"P{k:04d}-{j:06d}"


def participant_ssn(k: int, j: int) -> str:
    return valid_ssn(k * 1_000_000 + j)


def plan_categories(k: int) -> set[str]:
    p10 = (k - 1) % 10
    return {name for name, pos in PLAN_POSITIONS.items() if pos == p10}


def participant_categories(k: int, j: int) -> set[str]:
    q25 = (j - 1) % 25
    cats = {name for name, positions in PARTICIPANT_POSITIONS.items() if q25 in positions}
    if "variable_pay_participant" in cats and "variable_pay" not in plan_categories(k):
        cats.discard("variable_pay_participant")
    return cats


def special_plans(plans: int) -> dict[str, list[str]]:
    """Plan ids per special case (see the module table)."""
    out: dict[str, list[str]] = {name: [] for name in PLAN_POSITIONS}
    for k in range(1, plans + 1):
        for name in plan_categories(k):
            out[name].append(plan_id(k))
    return out


def special_participants(plans: int, per_plan: int) -> dict[str, list[str]]:
    """Participant ids per special case, over all plans (see the module table)."""
    out: dict[str, list[str]] = {name: [] for name in PARTICIPANT_POSITIONS}
    for k in range(1, plans + 1):
        for j in range(1, per_plan + 1):
            for name in participant_categories(k, j):
                out[name].append(participant_id(k, j))
    return out


# ---------------------------------------------------------------------------------------------- plans


@dataclass
class PlanData:
    """One generated plan: its rows, and the facts the iJoin seeding and the participants need."""

    k: int
    plan: tuple[Any, ...]
    contacts: list[tuple[Any, ...]]
    tiers: list[tuple[Any, ...]]
    funds: list[
        tuple[Any, ...]
    ]  # (plan_id, fund_id, ticker, fund_name, asset_class, is_default, is_open, sort)
    default_fund: str
    added_fund: str | None = None  # lineup_changed: in the recordkeeper, not in iJoin's active line-up
    closed_fund: str | None = None  # lineup_changed: closed in the recordkeeper, open in iJoin's
    holdable: list[str] = field(default_factory=list)  # funds that may hold balances
    allocatable: list[str] = field(default_factory=list)  # open funds that may take allocations

    @property
    def plan_id(self) -> str:
        return str(self.plan[0])

    @property
    def frequency(self) -> str:
        return str(self.plan[5])


def _phone(rng: random.Random) -> str:
    return f"{rng.choice((212, 303, 312, 404, 512, 614, 704, 919))}-555-{rng.randint(100, 9999):04d}"


def make_plan(k: int, seed: int = 42) -> PlanData:
    """Plan k, a pure function of (seed, k)."""
    rng = random.Random(seed * 1_000_003 + k)
    cats = plan_categories(k)
    pid = plan_id(k)
    base = EMPLOYERS[(k - 1) % len(EMPLOYERS)]
    employer = base if k <= len(EMPLOYERS) else f"{base} {(k - 1) // len(EMPLOYERS) + 1}"
    ein = None if "no_ein" in cats else f"{rng.randint(10, 98)}-{rng.randint(1_000_000, 9_999_999)}"
    frequency = PLAN_FREQUENCIES[(k - 1) % 10]
    year_start = date(2026, 7, 1) if k % 7 == 0 else date(2026, 1, 1)
    updated = RK_REFERENCE_TIME - timedelta(days=30 + rng.randint(0, 300), seconds=rng.randint(0, 86399))
    if "lineup_changed" in cats:
        updated = RK_REFERENCE_TIME - timedelta(days=4, hours=7)
    plan = (
        pid,
        f"{employer} 401(k) Plan",
        f"RL-{k:05d}",
        f"{employer} Inc.",
        ein,
        frequency,
        year_start.isoformat(),
        updated.strftime("%Y-%m-%d %H:%M:%S"),
    )
    domain = "".join(ch for ch in base.lower() if ch.isalpha()) + ".example.com"
    contacts = []
    for ctype in CONTACT_TYPES:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first[0]}{last}".lower().replace("'", "") + f"@{domain}"
        contacts.append((pid, ctype, f"{first} {last}", email, _phone(rng)))
    tiers = [(pid, 1, 3.0, 100.0)]
    if rng.random() < 0.6:
        tiers.append((pid, 2, 2.0, 50.0))
    core = sorted(rng.sample(range(len(CORE_FUNDS)), 5 + rng.randint(0, 3)))
    dates = sorted(rng.sample(range(len(TARGET_DATE_FUNDS)), 3))
    lineup = [CORE_FUNDS[i] for i in core] + [TARGET_DATE_FUNDS[i] for i in dates]
    if not any(f[0] == DEFAULT_TARGET_DATE for f in lineup):
        lineup.append(next(f for f in TARGET_DATE_FUNDS if f[0] == DEFAULT_TARGET_DATE))
    if "fund_without_ticker" in cats:
        lineup.append(NO_TICKER_FUND)
    if "lineup_changed" in cats:
        lineup.append(ADDED_FUND)
    funds = []
    default_fund = ""
    for n, (name, ticker, asset_class) in enumerate(lineup, start=1):
        fid = f"F{n:03d}"
        is_default = int(name == DEFAULT_TARGET_DATE)
        if is_default:
            default_fund = fid
        funds.append([pid, fid, ticker, name, asset_class, is_default, 1, n])
    data = PlanData(k, plan, contacts, tiers, [], default_fund)
    fund_ids = [f[1] for f in funds]
    data.holdable = list(fund_ids)
    if "lineup_changed" in cats:
        data.added_fund = fund_ids[-1]
        data.closed_fund = "F002"  # never the default (the default is a target-date fund, after the core)
        funds[1][6] = 0
        data.holdable = fund_ids[:-1]  # nobody has money in the new fund yet
    data.allocatable = [f for f in data.holdable if f != data.closed_fund]
    data.funds = [tuple(f) for f in funds]
    return data


# ---------------------------------------------------------------------------------------------- payroll


def _schedule(frequency: str, start: date, end: date) -> list[str]:
    """Pay dates of a frequency in [start, end): Fridays (W, B anchored on 2026-10-30), the 15th and the last
    day of the month (S), the last day of the month (M)."""
    out: list[date] = []
    if frequency in ("W", "B"):
        step = 7 if frequency == "W" else 14
        d = date(2026, 10, 30)
        while d >= start:
            if d < end:
                out.append(d)
            d -= timedelta(days=step)
    else:
        y, m = start.year, start.month
        while date(y, m, 1) < end:
            nxt = date(y + (m == 12), m % 12 + 1, 1)
            days = (
                [nxt - timedelta(days=1)] if frequency == "M" else [date(y, m, 15), nxt - timedelta(days=1)]
            )
            out += [d for d in days if start <= d < end]
            y, m = nxt.year, nxt.month
    return sorted(d.isoformat() for d in out)


_SCHEDULES = {f: _schedule(f, PAYROLL_HISTORY_START, RK_REFERENCE_DATE) for f in PERIODS_PER_YEAR}
# The variable-pay participant: mostly biweekly lately, with two weekly payrolls; weekly 5-6 months ago.
_VARIABLE_RECENT = [
    (d, "B") for d in ("2026-08-14", "2026-08-28", "2026-09-11", "2026-09-25", "2026-10-09", "2026-10-23")
] + [("2026-09-04", "W"), ("2026-10-16", "W")]
_VARIABLE_OLD = [(d, "W") for d in _schedule("W", date(2026, 4, 24), date(2026, 6, 27))]
VARIABLE_PAY_ROWS = sorted(_VARIABLE_OLD + _VARIABLE_RECENT)
_V_MIX = ("B", "B", "B", "B", "W", "W", "S", "S", "M", "B")

# ---------------------------------------------------------------------------------------------- participants

_DAY0 = date(1950, 1, 1).toordinal()
_ISO_CACHE: dict[int, str] = {}


def _iso(ordinal: int) -> str:
    s = _ISO_CACHE.get(ordinal)
    if s is None:
        s = _ISO_CACHE[ordinal] = date.fromordinal(ordinal).isoformat()
    return s


_BIRTH_LO, _BIRTH_HI = date(1958, 1, 1).toordinal(), date(2004, 12, 31).toordinal()
_HIRE_FLOOR = date(2000, 1, 1).toordinal()
_HIRE_HI = date(2026, 9, 30).toordinal()
_OLD_HIRE_HI = date(2025, 12, 31).toordinal()
_REF_ORD = RK_REFERENCE_DATE.toordinal()
_REF_SECONDS = int(RK_REFERENCE_TIME.timestamp())
_TERM_RECENT = date(2026, 9, 18).toordinal()
_AS_OF = BALANCE_AS_OF.isoformat()
_PRETAX = (0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 8.0, 10.0)
_ROTH = (0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0)


@dataclass
class Rows:
    participants: list[tuple[Any, ...]] = field(default_factory=list)
    payroll: list[tuple[Any, ...]] = field(default_factory=list)
    balances: list[tuple[Any, ...]] = field(default_factory=list)
    allocations: list[tuple[Any, ...]] = field(default_factory=list)
    rates: list[tuple[Any, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.participants)


def _stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _add_participant(out: Rows, plan: PlanData, j: int, rng: random.Random) -> None:
    """Append participant j's rows; consumes the plan's rng in a fixed way (prefix-stable)."""
    k, pid = plan.k, plan.plan_id
    part_id = participant_id(k, j)
    cats = participant_categories(k, j)
    ssn = participant_ssn(k, j)
    rnd, randrange = rng.random, rng.randrange
    first, last = FIRST_NAMES[randrange(len(FIRST_NAMES))], LAST_NAMES[randrange(len(LAST_NAMES))]
    birth = _BIRTH_LO + randrange(_BIRTH_HI - _BIRTH_LO)
    hire_lo = max(birth + 6575, _HIRE_FLOOR)  # 18 years
    long_tenure = bool(cats & {"terminated", "retired", "variable_pay_participant", "on_leave"})
    hire_hi = _OLD_HIRE_HI if long_tenure or j <= 4 else _HIRE_HI
    hire = hire_lo + randrange(max(1, hire_hi - hire_lo))
    status, term = "A", None
    if "terminated" in cats:
        status = "T"
        term = _TERM_RECENT if (j - 1) % 25 == 10 else date(2025, 3, 1).toordinal() + randrange(300)
        hire = min(hire, term - 60)
    elif "retired" in cats:
        status = "R"
        term = date(2025, 6, 30).toordinal()
        hire = min(hire, term - 60)
    elif "on_leave" in cats:
        status = "L"
    salary_basis = 30_000 + randrange(150) * 1_000
    computed = round(salary_basis * (0.97 + rnd() * 0.06), 2)
    prior = round(salary_basis * 0.96, 2)
    annual: float | None = float(salary_basis)
    comp: float | None = computed
    prior_comp: float | None = prior
    if "missing_salary" in cats:
        annual = None
    elif "no_salary_at_all" in cats:
        annual = comp = prior_comp = None
    elif "prior_year_only" in cats:
        annual = comp = None
    email = f"{first[0]}{last}{j}".lower().replace("'", "") + "@example.com"
    updated = _stamp(_REF_SECONDS - 1 - randrange(90 * 86400))
    out.participants.append(
        (pid, part_id, ssn, first, last, _iso(birth), _iso(hire), _iso(term) if term else None, status,
         annual, comp, prior_comp, email, updated)
    )  # fmt: skip

    # Payroll.
    frequency = plan.frequency
    if frequency == "V":
        frequency = _V_MIX[randrange(len(_V_MIX))]
    if "variable_pay_participant" in cats:
        schedule = VARIABLE_PAY_ROWS
    else:
        schedule = [(d, frequency) for d in _SCHEDULES[frequency]]
    hire_iso, term_iso = _iso(hire), (_iso(term) if term else "9999-12-31")
    gross = {f: round(salary_basis / n, 2) for f, n in PERIODS_PER_YEAR.items()}
    out.payroll += [
        (pid, ssn, day, freq, gross[freq]) for day, freq in schedule if hire_iso < day <= term_iso
    ]

    # Balances by fund and source.
    held = rng.sample(plan.holdable, min(len(plan.holdable), 1 + randrange(3)))
    sources = ["EE_PRETAX"]
    if rnd() < 0.3:
        sources.append("EE_ROTH")
    if rnd() < 0.05:
        sources.append("EE_AFTERTAX")
    if rnd() < 0.85:
        sources.append("ER_MATCH")
    for fund in sorted(held):
        for source in sources:
            out.balances.append((pid, part_id, fund, source, round(100 + rnd() * 60_000, 2), _AS_OF))

    # Allocations of new money (sum 100, or 95 for the special case) and contribution rates.
    alloc = sorted(f for f in held if f in plan.allocatable) or [plan.default_fund]
    total = 95 if "allocations_not_100" in cats else 100
    if len(alloc) == 1:
        pcts = [total]
    else:
        first_pct = 5 * (1 + randrange(total // 5 - len(alloc) + 1))
        rest = total - first_pct
        pcts = [first_pct, rest] if len(alloc) == 2 else [first_pct, rest - rest // 2, rest // 2]
    for fund, pct in zip(alloc, pcts, strict=True):
        out.allocations.append((pid, part_id, fund, float(pct)))
    pretax, roth = _PRETAX[randrange(len(_PRETAX))], _ROTH[randrange(len(_ROTH))]
    aftertax = 2.0 if rnd() < 0.05 else 0.0
    effective = _iso(max(hire, date(2026, 1, 1).toordinal()) if term is None else term)
    if term is not None:
        pretax = roth = aftertax = 0.0
    out.rates.append((pid, part_id, pretax, roth, aftertax, effective))


def _participant_rng(seed: int, k: int) -> random.Random:
    return random.Random((seed * 1_000_003 + k) * 7_919 + 1)


def iter_participant_chunks(plan: PlanData, per_plan: int, seed: int, chunk: int = CHUNK) -> Iterator[Rows]:
    rng = _participant_rng(seed, plan.k)
    out = Rows()
    for j in range(1, per_plan + 1):
        _add_participant(out, plan, j, rng)
        if len(out) >= chunk:
            yield out
            out = Rows()
    if len(out):
        yield out


# ---------------------------------------------------------------------------------------------- seeding

_INSERTS = {
    "plan": "INSERT INTO rk_plan (plan_id, plan_name, external_plan_id, employer_name, employer_ein,"
    " pay_frequency_code, plan_year_start, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "contact": "INSERT INTO rk_plan_contact (plan_id, contact_type, name, email, phone)"
    " VALUES (?, ?, ?, ?, ?)",
    "tier": "INSERT INTO rk_match_tier (plan_id, tier, contribution_pct, match_pct) VALUES (?, ?, ?, ?)",
    "fund": "INSERT INTO rk_fund (plan_id, fund_id, ticker, fund_name, asset_class, is_default, is_open,"
    " sort_order) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "participant": "INSERT INTO rk_participant (plan_id, participant_id, ssn, first_name, last_name,"
    " birth_date, hire_date, termination_date, status, annual_salary, computed_compensation,"
    " prior_year_compensation, email, updated_at) VALUES (" + ", ".join("?" * 14) + ")",
    "payroll": "INSERT INTO rk_payroll (plan_id, ssn, pay_date, pay_frequency_code, gross_pay)"
    " VALUES (?, ?, ?, ?, ?)",
    "balance": "INSERT INTO rk_balance (plan_id, participant_id, fund_id, money_source, balance, as_of)"
    " VALUES (?, ?, ?, ?, ?, ?)",
    "allocation": "INSERT INTO rk_allocation (plan_id, participant_id, fund_id, pct) VALUES (?, ?, ?, ?)",
    "rate": "INSERT INTO rk_contribution_rate (plan_id, participant_id, pretax_pct, roth_pct, aftertax_pct,"
    " effective_date) VALUES (?, ?, ?, ?, ?, ?)",
}


def _statements(sql: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def schema_statements() -> tuple[list[str], list[str]]:
    """(CREATE TABLE statements, CREATE INDEX statements) of the schema file."""
    stmts = _statements(SCHEMA_PATH.read_text())
    indexes = [s for s in stmts if s.upper().startswith("CREATE INDEX")]
    return [s for s in stmts if s not in indexes], indexes


def _insert_plan(conn: sqlite3.Connection, plan: PlanData, per_plan: int, seed: int) -> int:
    conn.execute(_INSERTS["plan"], plan.plan)
    conn.executemany(_INSERTS["contact"], plan.contacts)
    conn.executemany(_INSERTS["tier"], plan.tiers)
    conn.executemany(_INSERTS["fund"], plan.funds)
    count = 0
    for rows in iter_participant_chunks(plan, per_plan, seed):
        conn.executemany(_INSERTS["participant"], rows.participants)
        conn.executemany(_INSERTS["payroll"], sorted(rows.payroll))
        conn.executemany(_INSERTS["balance"], rows.balances)
        conn.executemany(_INSERTS["allocation"], rows.allocations)
        conn.executemany(_INSERTS["rate"], rows.rates)
        conn.commit()
        count += len(rows)
    return count


def seed_recordkeeper(db_path: Path, plans: int = 6, participants_per_plan: int = 30, seed: int = 42) -> int:
    """Create the recordkeeper SQLite database from include/sql/recordkeeper_schema.sql and fill it (replaces
    any old file), streamed in chunks of 5,000 participants. Returns the number of participants."""
    if not 1 <= plans <= MAX_PLANS:
        raise ValueError(f"plans must be between 1 and {MAX_PLANS}")
    if not 1 <= participants_per_plan <= MAX_PARTICIPANTS_PER_PLAN:
        raise ValueError(f"participants_per_plan must be between 1 and {MAX_PARTICIPANTS_PER_PLAN}")
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    tables, indexes = schema_statements()
    conn = sqlite3.connect(db_path)
    total = 0
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a throwaway file being built
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-131072")  # 128 MB: one plan's payroll index stays in cache
        for stmt in tables:
            conn.execute(stmt)
        for k in range(1, plans + 1):
            total += _insert_plan(conn, make_plan(k, seed), participants_per_plan, seed)
        for stmt in indexes:  # secondary indexes once, after the load
            conn.execute(stmt)
        conn.commit()
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    return total


def add_plan(db_path: Path, k: int, participants_per_plan: int = 30, seed: int = 42) -> str:
    """Add plan k (as the seeding would make it) to an existing recordkeeper database: a plan the
    recordkeeper has and iJoin does not (pair with iJoin's ``POST /sandbox/plans``). Returns its id."""
    if not 1 <= k <= MAX_PLANS:
        raise ValueError(f"plan number must be between 1 and {MAX_PLANS}")
    conn = sqlite3.connect(db_path)
    try:
        if conn.execute("SELECT 1 FROM rk_plan WHERE plan_id = ?", (plan_id(k),)).fetchone():
            raise ValueError(f"plan {plan_id(k)} already exists")
        _insert_plan(conn, make_plan(k, seed), participants_per_plan, seed)
        conn.commit()
    finally:
        conn.close()
    return plan_id(k)


# ---------------------------------------------------------------------------------------------- reading


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def plan_version(conn: sqlite3.Connection, pid: str) -> dict[str, Any] | None:
    """A recordkeeper plan in iJoin's version shape (the fields a Plan Sync sends), or None.

    ``phone_contact`` is the primary plan contact's phone; ``funds`` are in fund_id order (iJoin keeps them
    so); ``default_investment`` is the fund flagged is_default.
    """
    row = conn.execute(
        "SELECT plan_name, external_plan_id, employer_name, employer_ein FROM rk_plan WHERE plan_id = ?",
        (pid,),
    ).fetchone()
    if row is None:
        return None
    contacts = {
        r[0]: {"name": r[1], "email": r[2], "phone": r[3]}
        for r in conn.execute(
            "SELECT contact_type, name, email, phone FROM rk_plan_contact WHERE plan_id = ?"
            " ORDER BY contact_type",
            (pid,),
        )
    }
    tiers = [
        {"contribution_pct": _num(r[0]), "match_pct": _num(r[1])}
        for r in conn.execute(
            "SELECT contribution_pct, match_pct FROM rk_match_tier WHERE plan_id = ? ORDER BY tier", (pid,)
        )
    ]
    funds = [
        {
            "fund_id": r[0],
            "ticker": r[1],
            "fund_name": r[2],
            "asset_class": r[3],
            "is_default": bool(r[4]),
            "is_open": bool(r[5]),
        }
        for r in conn.execute(
            "SELECT fund_id, ticker, fund_name, asset_class, is_default, is_open FROM rk_fund"
            " WHERE plan_id = ? ORDER BY fund_id",
            (pid,),
        )
    ]
    default = next((f["fund_id"] for f in funds if f["is_default"]), None)
    return {
        "plan_name": row[0],
        "external_plan_id": row[1],
        "employer_name": row[2],
        "employer_ein": row[3],
        "phone_contact": contacts.get("primary_plan_contact", {}).get("phone"),
        "contacts": contacts,
        "match_tiers": tiers,
        "funds": funds,
        "default_investment": default,
    }


def plan_ids(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT plan_id FROM rk_plan ORDER BY plan_id")]
