"""Deterministic fake HCM people, from 10 to 1,000,000 employees.

Person ``i`` (1-based; person number ``E{i:06d}``) is a pure function of ``(seed, i)``: the first N
people are identical whatever the total size, and the same seed and size give an identical database.

Which category a person falls into depends on the index only (never on the total size), so tests can
find the special cases with :func:`special_people`. With ``p200 = (i - 1) % 200`` and
``p100 = (i - 1) % 100``:

======================== ======================= ===== ===============================================
category                 positions               share what is special
======================== ======================= ===== ===============================================
``new_hire``             p200 == 1               0.5 % not in PlanSource; HCM subscriber id/username NULL
``invalid_ssn``          p200 == 2               0.5 % SSN breaks SSA rules (area 000/666/9xx, group 00,
                                                       serial 0000, in turn); PlanSource has the same
``subscriber_id_mismatch`` p200 == 3             0.5 % HCM plansource_subscriber_id != PlanSource id
``username_mismatch``    p200 == 5               0.5 % HCM plansource_username != PlanSource user_name
``ssn_mismatch``         p200 == 6               0.5 % HCM SSN valid; PlanSource holds another valid SSN
``unmapped_code``        p200 == 7               0.5 % pay_group_code ``XX-ZZ`` (not in pay_group.csv)
``test_subscriber``      p200 == 8               0.5 % PlanSource has test_employee = true
``rehired``              p100 in {0, 33, 66}     3 %   status A, hire_date > original_hire_date
``terminated``           p100 in {4,20,40,60,80} 5 %   status T, termination_date and reason code
``on_leave``             p100 in {9, 45, 75}     3 %   status L
``retired``              p100 == 30              1 %   status R, termination reason RETIRE
``multi_ein``            p100 % 12 == 11         8 %   a second, non-primary EIN (other type/pay group)
======================== ======================= ===== ===============================================

The bad categories (the first seven) are disjoint from each other and from the status categories, and
all seven fall within the first 10 people, so every one is non-empty from 10 employees on. Everyone else is
Active. ~10 % carry a union code; employment type FT/PT (a few FTT/PTT), pay groups BW/WK/SM/MO-US, pay type
H/S. ``updated_at`` is spread over the 90 days before :data:`REFERENCE_TIME` (UTC), so a delta run finds
nobody until a test calls :func:`touch_employees`.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# Fixed so that the same seed gives the same database on any day.
REFERENCE_TIME = datetime(2025, 6, 30, 12, 0, 0, tzinfo=UTC)
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "sql" / "hcm_schema.sql"
CHUNK = 5000

BAD_POSITIONS: dict[str, int] = {
    "new_hire": 1,
    "invalid_ssn": 2,
    "subscriber_id_mismatch": 3,
    "username_mismatch": 5,
    "ssn_mismatch": 6,
    "unmapped_code": 7,
    "test_subscriber": 8,
}
STATUS_POSITIONS: dict[str, frozenset[int]] = {
    "rehired": frozenset({0, 33, 66}),
    "terminated": frozenset({4, 20, 40, 60, 80}),
    "on_leave": frozenset({9, 45, 75}),
    "retired": frozenset({30}),
}
CATEGORIES: tuple[str, ...] = (*BAD_POSITIONS, "multi_ein", "terminated", "rehired", "on_leave", "retired")

EINS = ("12-3456789", "27-1048576", "46-2718281", "83-3141592")
FIRST_NAMES = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Wei",
    "Ashley",
    "Steven",
    "Kimberly",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenji",
    "Carol",
    "Priya",
    "Amanda",
    "Luis",
    "Melissa",
    "Omar",
    "Deborah",
    "Ahmed",
    "Stephanie",
    "Jose",
    "Rebecca",
    "Ngozi",
    "Laura",
)
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Patel",
    "Kim",
    "O'Brien",
    "Okafor",
    "Chen",
    "Tanaka",
)
STREETS = (
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Park Blvd",
    "Elm St",
    "Washington Ave",
    "Lake Rd",
    "Hillcrest Dr",
    "Sunset Blvd",
    "Pine St",
    "River Rd",
    "Church St",
    "Highland Ave",
    "Mill Rd",
)
CITIES = (  # city, state, zip prefix
    ("Columbus", "OH", "432"),
    ("Austin", "TX", "787"),
    ("Denver", "CO", "802"),
    ("Raleigh", "NC", "276"),
    ("Phoenix", "AZ", "850"),
    ("Portland", "OR", "972"),
    ("Atlanta", "GA", "303"),
    ("Chicago", "IL", "606"),
    ("Tampa", "FL", "336"),
    ("Madison", "WI", "537"),
    ("Boise", "ID", "837"),
    ("Richmond", "VA", "232"),
    ("Omaha", "NE", "681"),
    ("Nashville", "TN", "372"),
    ("Sacramento", "CA", "958"),
)
JOB_TITLES = (
    "Analyst",
    "Engineer",
    "Nurse",
    "Technician",
    "Manager",
    "Associate",
    "Specialist",
    "Coordinator",
    "Driver",
    "Accountant",
    "Warehouse Associate",
    "Customer Service Rep",
    "Director",
)
LOCATIONS = ("HQ", "Plant 1", "Plant 2", "Distribution Center", "Remote", "Regional Office")
DIVISIONS = ("Operations", "Finance", "Sales", "Engineering", "Human Resources", "Logistics")
GENDERS = (("F", 48), ("M", 48), ("X", 2), ("U", 2))
MARITAL = (("S", 35), ("M", 45), ("D", 10), ("W", 3), ("P", 5), ("X", 2))
EMPLOYMENT_TYPES = (("FT", 78), ("PT", 18), ("FTT", 2), ("PTT", 2))
PAY_GROUPS = (("BW-US", 55), ("WK-US", 20), ("SM-US", 15), ("MO-US", 10))
UNIONS = ("UAW-600", "SEIU-32", "IBEW-11")
TERMINATION_REASONS = ("RESIGN", "LAYOFF", "DISCH", "EOC", "RESIGN", "DEATH")

# Valid SSA areas, minus the three that hold blacklisted numbers (078, 219, 457): every number made from
# them passes stdnum.us.ssn.is_valid.
_AREAS = tuple(a for a in range(100, 900) if a not in (219, 457, 666))
_SSN_SPACE = len(_AREAS) * 99 * 9999
_SSN_STRIDE = 7_919_993  # coprime with _SSN_SPACE, so index -> SSN is a bijection that looks unordered


def person_number(i: int) -> str:
    return f"E{i:06d}"


def person_index(number: str) -> int:
    return int(number[1:])


def subscriber_id(i: int) -> str:
    """PlanSource's id for person i (what PlanSource holds)."""
    return f"PS{10_000_000 + i:08d}"


def valid_ssn(i: int) -> str:
    """A valid SSN unique to index i (also used with offsets for PlanSource-side mismatches)."""
    j = (i * _SSN_STRIDE) % _SSN_SPACE
    serial = j % 9999 + 1
    j //= 9999
    group = j % 99 + 1
    area = _AREAS[j // 99]
    return f"{area:03d}{group:02d}{serial:04d}"


def _invalid_ssn(i: int) -> str:
    good = valid_ssn(i)
    kind = ((i - 1) // 200) % 5
    if kind == 0:
        return "000" + good[3:]
    if kind == 1:
        return "666" + good[3:]
    if kind == 2:
        return f"9{i % 100:02d}" + good[3:]
    if kind == 3:
        return good[:3] + "00" + good[5:]
    return good[:5] + "0000"


def category_of(i: int) -> set[str]:
    """The special categories of person i (empty for an ordinary active employee)."""
    cats: set[str] = set()
    p200, p100 = (i - 1) % 200, (i - 1) % 100
    for name, pos in BAD_POSITIONS.items():
        if p200 == pos:
            cats.add(name)
    for name, positions in STATUS_POSITIONS.items():
        if p100 in positions:
            cats.add(name)
    if p100 % 12 == 11:
        cats.add("multi_ein")
    return cats


def special_people(employees: int) -> dict[str, list[str]]:
    """Person numbers per category for a database of ``employees`` people (see the module table)."""
    out: dict[str, list[str]] = {name: [] for name in CATEGORIES}
    for i in range(1, employees + 1):
        for name in category_of(i):
            out[name].append(person_number(i))
    return out


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in weighted], weights=[w for _, w in weighted])[0]


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, (end - start).days))


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class Person:
    """One generated person: the HCM rows plus what PlanSource holds where it differs."""

    index: int
    person: tuple[Any, ...]
    employments: tuple[tuple[Any, ...], ...]
    categories: frozenset[str]
    plansource_id: str
    plansource_user_name: str
    plansource_ssn: str | None


def make_person(i: int, seed: int = 42, reference_time: datetime = REFERENCE_TIME) -> Person:
    """Person i, a pure function of (seed, i)."""
    rng = random.Random(seed * 1_000_000_007 + i)  # int seed: fast, no hashing of a string
    cats = category_of(i)
    number = person_number(i)
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    middle = rng.choice(FIRST_NAMES)[0] if rng.random() < 0.6 else None
    gender = _pick(rng, GENDERS)
    marital = _pick(rng, MARITAL)
    ref_day = reference_time.date()
    birth = _day(rng, date(1955, 1, 1), date(2004, 12, 31))
    city, state, zip_prefix = rng.choice(CITIES)
    address_1 = f"{rng.randint(10, 9999)} {rng.choice(STREETS)}"
    address_2 = f"Apt {rng.randint(1, 400)}" if rng.random() < 0.15 else None
    zip_code = f"{zip_prefix}{rng.randint(0, 99):02d}"
    phone = f"{rng.randint(201, 989)}555{rng.randint(0, 9999):04d}"
    user_name = "".join(ch for ch in (first[0] + last).lower() if ch.isalpha()) + f"{i:06d}"
    email = f"{user_name}@example.com"
    updated_at = _ts(reference_time - timedelta(seconds=rng.randint(0, 90 * 86400)))

    ssn = _invalid_ssn(i) if "invalid_ssn" in cats else valid_ssn(i)
    ps_id = subscriber_id(i)
    hcm_ps_id: str | None = ps_id
    hcm_user: str | None = user_name
    ps_user = user_name
    ps_ssn: str | None = ssn
    if "new_hire" in cats:
        hcm_ps_id = hcm_user = None
        ps_ssn = None
    if "subscriber_id_mismatch" in cats:
        hcm_ps_id = f"PS{90_000_000 - i:08d}"
    if "username_mismatch" in cats:
        ps_user = f"{first.lower()}.{last.lower()}{i}"
    if "ssn_mismatch" in cats:
        ps_ssn = valid_ssn(_SSN_SPACE - i)  # valid, and never another generated person's SSN

    person = (
        number,
        first,
        middle,
        last,
        ssn,
        birth.isoformat(),
        gender,
        marital,
        address_1,
        address_2,
        city,
        state,
        zip_code,
        "USA",
        phone,
        email,
        hcm_ps_id,
        hcm_user,
        updated_at,
    )

    # Primary employment.
    # A rehire needs room between the first hire and the rehire.
    latest_hire = ref_day - timedelta(days=400 if "rehired" in cats else 45)
    original_hire = _day(rng, max(birth + timedelta(days=18 * 366), date(1995, 1, 1)), latest_hire)
    if "new_hire" in cats:
        original_hire = ref_day - timedelta(days=rng.randint(1, 20))
    hire = original_hire
    status, term_date, term_reason = "A", None, None
    if "rehired" in cats:
        hire = _day(rng, original_hire + timedelta(days=90), ref_day - timedelta(days=5))
    elif "terminated" in cats:
        status = "T"
        term_date = _day(rng, original_hire + timedelta(days=30), ref_day - timedelta(days=1)).isoformat()
        term_reason = rng.choice(TERMINATION_REASONS)
    elif "retired" in cats:
        status = "R"
        term_date = _day(rng, original_hire + timedelta(days=30), ref_day - timedelta(days=1)).isoformat()
        term_reason = "RETIRE"
    elif "on_leave" in cats:
        status = "L"
    emp_type = _pick(rng, EMPLOYMENT_TYPES)
    pay_group = "XX-ZZ" if "unmapped_code" in cats else _pick(rng, PAY_GROUPS)
    pay_type = "H" if emp_type in ("PT", "PTT") or rng.random() < 0.45 else "S"
    union = rng.choice(UNIONS) if rng.random() < 0.10 else None
    salary = f"{rng.randint(28_000, 185_000)}.00" if pay_type == "S" else f"{rng.randint(15, 60) * 2080}.00"
    ein = rng.choice(EINS)
    emp_updated = _ts(reference_time - timedelta(seconds=rng.randint(0, 90 * 86400)))
    employments = [
        (
            number,
            ein,
            1,
            status,
            emp_type,
            pay_group,
            pay_type,
            union,
            hire.isoformat(),
            original_hire.isoformat(),
            term_date,
            term_reason,
            salary,
            rng.choice(JOB_TITLES),
            rng.choice(LOCATIONS),
            rng.choice(DIVISIONS),
            emp_updated,
        )
    ]
    if "multi_ein" in cats:
        # A second job at another employer of the group: non-primary, often part-time or ended.
        other_ein = EINS[(EINS.index(ein) + 1 + rng.randint(0, len(EINS) - 2)) % len(EINS)]
        o_hire = _day(rng, original_hire, ref_day - timedelta(days=10))
        o_status = rng.choice(("A", "A", "T"))
        employments.append(
            (
                number,
                other_ein,
                0,
                o_status,
                rng.choice(("PT", "PTT", "FT")),
                rng.choice(("WK-US", "SM-US")),
                "H",
                None,
                o_hire.isoformat(),
                o_hire.isoformat(),
                ref_day.isoformat() if o_status == "T" else None,
                "EOC" if o_status == "T" else None,
                f"{rng.randint(10, 30) * 1040}.00",
                rng.choice(JOB_TITLES),
                rng.choice(LOCATIONS),
                rng.choice(DIVISIONS),
                emp_updated,
            )
        )
    return Person(i, person, tuple(employments), frozenset(cats), ps_id, ps_user, ps_ssn)


def iter_people(
    employees: int, seed: int = 42, reference_time: datetime = REFERENCE_TIME
) -> Iterator[Person]:
    for i in range(1, employees + 1):
        yield make_person(i, seed, reference_time)


def _chunks(items: Iterable[Person], size: int) -> Iterator[list[Person]]:
    chunk: list[Person] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_PERSON_SQL = (
    "INSERT INTO hcm_person (person_number, first_name, middle_name, last_name, ssn, birth_date, gender_code,"
    " marital_status_code, address_1, address_2, city, state, zip_code, country, home_phone, work_email,"
    " plansource_subscriber_id, plansource_username, updated_at) VALUES (" + ",".join("?" * 19) + ")"
)
_EMPLOYMENT_SQL = (
    "INSERT INTO hcm_employment (person_number, ein, is_primary, employee_status_code, employment_type_code,"
    " pay_group_code, pay_type_code, union_code, hire_date, original_hire_date, termination_date,"
    " termination_reason_code, annual_salary, job_title, location, division, updated_at)"
    " VALUES (" + ",".join("?" * 17) + ")"
)


def seed_hcm(
    db_path: Path, employees: int, seed: int = 42, reference_time: datetime = REFERENCE_TIME
) -> None:
    """Create the HCM SQLite database from include/sql/hcm_schema.sql and fill it (replaces any old file)."""
    if not 1 <= employees <= 10_000_000:
        raise ValueError("employees must be between 1 and 10,000,000")
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(db_path)
    try:
        # A throwaway file being built: durability during the load buys nothing.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(SCHEMA_PATH.read_text())
        for chunk in _chunks(iter_people(employees, seed, reference_time), CHUNK):
            conn.executemany(_PERSON_SQL, [p.person for p in chunk])
            conn.executemany(_EMPLOYMENT_SQL, [e for p in chunk for e in p.employments])
            conn.commit()
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


_PERSON_FIELDS = {
    "first_name",
    "middle_name",
    "last_name",
    "ssn",
    "birth_date",
    "gender_code",
    "marital_status_code",
    "address_1",
    "address_2",
    "city",
    "state",
    "zip_code",
    "country",
    "home_phone",
    "work_email",
    "plansource_subscriber_id",
    "plansource_username",
}
_EMPLOYMENT_FIELDS = {
    "employee_status_code",
    "employment_type_code",
    "pay_group_code",
    "pay_type_code",
    "union_code",
    "hire_date",
    "original_hire_date",
    "termination_date",
    "termination_reason_code",
    "annual_salary",
    "job_title",
    "location",
    "division",
}


def touch_statements(
    when: datetime, changes: dict[str, Any] | None, placeholder: str
) -> tuple[str, list[Any], str, list[Any]]:
    """The two UPDATEs of an HCM edit (person row, primary employment row) and their values, for a
    driver's placeholder; each statement then takes (values..., updated_at, person_number)."""
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    changes = dict(changes or {})
    unknown = set(changes) - _PERSON_FIELDS - _EMPLOYMENT_FIELDS
    if unknown:
        raise ValueError(f"unknown HCM fields: {sorted(unknown)}")
    p_changes = {k: v for k, v in changes.items() if k in _PERSON_FIELDS}
    e_changes = {k: v for k, v in changes.items() if k in _EMPLOYMENT_FIELDS}
    # Column names come from the fixed sets above, never from values.
    p, sets = (
        placeholder,
        lambda cols: ", ".join([*(f"{k} = {placeholder}" for k in cols), f"updated_at = {p}"]),
    )
    p_sql = f"UPDATE hcm_person SET {sets(p_changes)} WHERE person_number = {p}"
    e_sql = f"UPDATE hcm_employment SET {sets(e_changes)} WHERE person_number = {p} AND is_primary = 1"
    return p_sql, list(p_changes.values()), e_sql, list(e_changes.values())


def touch_employees(
    db_path: Path,
    person_numbers: Iterable[str],
    when: datetime,
    changes: dict[str, Any] | None = None,
) -> int:
    """Simulate HCM edits: apply ``changes`` and set updated_at = ``when`` (UTC). Returns people touched.

    Person fields (e.g. ``city``, ``marital_status_code``) go to hcm_person; employment fields (e.g.
    ``employee_status_code``, ``termination_date``) go to the primary hcm_employment row, whose updated_at
    moves too. With no changes, only updated_at moves (on hcm_person).
    """
    stamp = _ts(when)
    p_sql, p_values, e_sql, e_values = touch_statements(when, changes, "?")
    touched = 0
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            for number in person_numbers:
                cur = conn.execute(p_sql, [*p_values, stamp, number])
                touched += cur.rowcount
                if e_values:
                    conn.execute(e_sql, [*e_values, stamp, number])
    finally:
        conn.close()
    return touched
