"""The seeded Relius-style recordkeeper database (hub_sandbox.recordkeeper)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from hub_sandbox.recordkeeper import (
    ADDED_FUND,
    NO_TICKER_FUND,
    RK_REFERENCE_DATE,
    SCHEMA_PATH,
    THREE_MONTHS_START,
    add_plan,
    plan_version,
    schema_statements,
    seed_recordkeeper,
    special_participants,
    special_plans,
)

TABLES = {
    "rk_plan": [
        "plan_id",
        "plan_name",
        "external_plan_id",
        "employer_name",
        "employer_ein",
        "pay_frequency_code",
        "plan_year_start",
        "updated_at",
    ],
    "rk_plan_contact": ["plan_id", "contact_type", "name", "email", "phone"],
    "rk_match_tier": ["plan_id", "tier", "contribution_pct", "match_pct"],
    "rk_fund": [
        "plan_id",
        "fund_id",
        "ticker",
        "fund_name",
        "asset_class",
        "is_default",
        "is_open",
        "sort_order",
    ],
    "rk_participant": [
        "plan_id",
        "participant_id",
        "ssn",
        "first_name",
        "last_name",
        "birth_date",
        "hire_date",
        "termination_date",
        "status",
        "annual_salary",
        "computed_compensation",
        "prior_year_compensation",
        "email",
        "updated_at",
    ],
    "rk_payroll": ["plan_id", "ssn", "pay_date", "pay_frequency_code", "gross_pay"],
    "rk_balance": ["plan_id", "participant_id", "fund_id", "money_source", "balance", "as_of"],
    "rk_allocation": ["plan_id", "participant_id", "fund_id", "pct"],
    "rk_contribution_rate": [
        "plan_id",
        "participant_id",
        "pretax_pct",
        "roth_pct",
        "aftertax_pct",
        "effective_date",
    ],
    "rk_applied_election": ["election_id", "plan_id", "participant_id", "kind", "applied_at"],
}
PLANS = special_plans(6)
PEOPLE = special_participants(6, 30)


@pytest.fixture(scope="module")
def rk_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rk") / "recordkeeper.sqlite"
    assert seed_recordkeeper(path, plans=6, participants_per_plan=30, seed=42) == 180
    return path


@pytest.fixture
def db(rk_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(rk_path)
    yield conn
    conn.close()


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in TABLES}
    finally:
        conn.close()


def test_schema_has_exactly_the_contract_tables_and_columns() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA_PATH.read_text())
    conn.executescript(SCHEMA_PATH.read_text())  # IF NOT EXISTS throughout
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    assert sorted(names) == sorted(TABLES)
    for table, columns in TABLES.items():
        assert [r[1] for r in conn.execute(f"PRAGMA table_info({table})")] == columns
    tables, indexes = schema_statements()
    assert len(tables) == len(TABLES) and indexes


def test_schema_and_seeded_rows_fit_postgresql(rk_path: Path) -> None:
    from tests.postgres_server import PostgresUnavailable, postgres_server

    psycopg2 = pytest.importorskip("psycopg2")
    try:
        server = postgres_server()
        pg = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        conn = psycopg2.connect(pg.dsn)
        with conn, conn.cursor() as cur:
            cur.execute(SCHEMA_PATH.read_text())
            for table, rows in _dump(rk_path).items():
                columns = TABLES[table]
                sql = (
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
                )
                cur.executemany(sql, [tuple(None if v is None else str(v) for v in r) for r in rows])
            cur.execute("SELECT COUNT(*), MIN(birth_date), SUM(annual_salary) FROM rk_participant")
            count, first_birth, total = cur.fetchone()
        conn.close()
        # The Participant Sync's scans, five open at once on one PostgreSQL connection (named cursors),
        # give what they give on SQLite: the same rows, in the same participant order.
        from benefits_hub.hooks.recordkeeper import RecordkeeperHook

        os.environ["AIRFLOW_CONN_RK_PG"] = pg.connection_json()
        os.environ["AIRFLOW_CONN_RK_LITE"] = json.dumps({"conn_type": "sqlite", "host": str(rk_path)})
        scanned = {}
        for conn_id in ("rk_pg", "rk_lite"):
            hook = RecordkeeperHook(conn_id)
            with hook.connection() as db:
                scans = hook.participant_scans(db, "P0002", "2000-01-01")
                interleaved = list(zip(*(scans[name] for name in sorted(scans)), strict=False))
                scanned[conn_id] = [
                    [
                        (row["participant_id"], str(row.get("pay_date") or row.get("fund_id") or ""))
                        for row in rows
                    ]
                    for rows in interleaved
                ]
    finally:
        for name in ("AIRFLOW_CONN_RK_PG", "AIRFLOW_CONN_RK_LITE"):
            os.environ.pop(name, None)
        server.__exit__(None, None, None)
    assert count == 180 and isinstance(first_birth, date) and total > 0
    assert scanned["rk_pg"] == scanned["rk_lite"] and len(scanned["rk_pg"]) >= 30


def test_same_seed_same_database_and_prefix_stable(tmp_path: Path, rk_path: Path) -> None:
    again = tmp_path / "again.sqlite"
    seed_recordkeeper(again, plans=6, participants_per_plan=30, seed=42)
    assert _dump(again) == _dump(rk_path)

    bigger = tmp_path / "bigger.sqlite"  # more plans, more participants: the first ones are unchanged
    seed_recordkeeper(bigger, plans=7, participants_per_plan=40, seed=42)
    conn = sqlite3.connect(bigger)
    small = _dump(rk_path)["rk_participant"]
    assert (
        conn.execute(
            "SELECT * FROM rk_participant WHERE CAST(substr(participant_id, 7) AS INTEGER) <= 30"
            " AND plan_id <= 'P0006' ORDER BY 1, 2"
        ).fetchall()
        == small
    )
    conn.close()

    other = tmp_path / "other.sqlite"
    seed_recordkeeper(other, plans=6, participants_per_plan=30, seed=7)
    assert _dump(other)["rk_participant"] != small


def test_special_plans_at_six_plans(db: sqlite3.Connection) -> None:
    assert PLANS == {
        "no_ein": ["P0002"],
        "fund_without_ticker": ["P0003"],
        "variable_pay": ["P0004"],
        "default_investment_locked": ["P0004"],
        "lineup_changed": ["P0005"],
        "new_plan": ["P0006"],
    }
    plans = {r[0]: r for r in db.execute("SELECT plan_id, employer_ein, pay_frequency_code FROM rk_plan")}
    assert sorted(plans) == [f"P000{k}" for k in range(1, 7)]
    assert [p for p, r in plans.items() if r[1] is None] == ["P0002"]
    assert [p for p, r in plans.items() if r[2] == "V"] == ["P0004"]
    no_ticker = db.execute("SELECT plan_id, fund_name, is_open FROM rk_fund WHERE ticker IS NULL").fetchall()
    assert no_ticker == [("P0003", NO_TICKER_FUND[0], 1)]
    # One default per plan, open, with a ticker.
    defaults = db.execute(
        "SELECT plan_id, COUNT(*) FROM rk_fund WHERE is_default = 1 AND is_open = 1"
        " AND ticker IS NOT NULL GROUP BY plan_id"
    ).fetchall()
    assert len(defaults) == 6 and {n for _, n in defaults} == {1}


def test_lineup_changed_plan_added_one_fund_and_closed_one(db: sqlite3.Connection) -> None:
    funds = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT fund_id, fund_name, is_open FROM rk_fund WHERE plan_id = 'P0005' ORDER BY fund_id"
        )
    }
    added = max(funds)
    assert funds[added] == (ADDED_FUND[0], 1)
    assert [f for f, (_, is_open) in funds.items() if not is_open] == ["F002"]
    # No money in the new fund yet; the closed fund keeps balances but takes no new allocations.
    holding = {r[0] for r in db.execute("SELECT DISTINCT fund_id FROM rk_balance WHERE plan_id = 'P0005'")}
    assert added not in holding and "F002" in holding
    allocated = {
        r[0] for r in db.execute("SELECT DISTINCT fund_id FROM rk_allocation WHERE plan_id = 'P0005'")
    }
    assert not allocated & {added, "F002"}
    version = plan_version(db, "P0005")
    assert version is not None and version["funds"][-1]["fund_id"] == added


def test_special_participants(db: sqlite3.Connection) -> None:
    assert PEOPLE["allocations_not_100"][0] == "P0001-000006"
    assert PEOPLE["missing_salary"][0] == "P0001-000007"
    assert PEOPLE["no_salary_at_all"][0] == "P0001-000008"
    assert PEOPLE["prior_year_only"][0] == "P0001-000009"
    assert PEOPLE["variable_pay_participant"] == ["P0004-000010"]
    assert PEOPLE["terminated"][:2] == ["P0001-000011", "P0001-000021"]
    assert all(len(PEOPLE[c]) == 6 for c in ("allocations_not_100", "missing_salary", "on_leave", "retired"))

    def salary(pid: str) -> tuple[object, ...]:
        return db.execute(
            "SELECT annual_salary, computed_compensation, prior_year_compensation FROM rk_participant"
            " WHERE participant_id = ?",
            (pid,),
        ).fetchone()

    a, c, p = salary("P0001-000001")
    assert a and c and p
    a, c, p = salary(PEOPLE["missing_salary"][0])
    assert a is None and c and p
    assert salary(PEOPLE["no_salary_at_all"][0]) == (None, None, None)
    a, c, p = salary(PEOPLE["prior_year_only"][0])
    assert a is None and c is None and p

    sums = dict(db.execute("SELECT participant_id, SUM(pct) FROM rk_allocation GROUP BY participant_id"))
    assert len(sums) == 180
    assert sorted(pid for pid, total in sums.items() if total != 100) == PEOPLE["allocations_not_100"]
    assert {sums[pid] for pid in PEOPLE["allocations_not_100"]} == {95}

    statuses = dict(db.execute("SELECT participant_id, status FROM rk_participant"))
    assert {p for p, s in statuses.items() if s == "T"} == set(PEOPLE["terminated"])
    assert {p for p, s in statuses.items() if s == "L"} == set(PEOPLE["on_leave"])
    assert {p for p, s in statuses.items() if s == "R"} == set(PEOPLE["retired"])
    terminated = db.execute(
        "SELECT COUNT(*) FROM rk_participant WHERE status IN ('T', 'R')"
        " AND (termination_date IS NULL OR termination_date <= hire_date)"
    ).fetchone()
    assert terminated == (0,)
    assert db.execute("SELECT COUNT(DISTINCT ssn) FROM rk_participant").fetchone() == (180,)
    assert db.execute("SELECT COUNT(*) FROM rk_contribution_rate").fetchone() == (180,)
    sources = {r[0] for r in db.execute("SELECT DISTINCT money_source FROM rk_balance")}
    assert sources <= {"EE_PRETAX", "EE_ROTH", "EE_AFTERTAX", "ER_MATCH"} and "ER_MATCH" in sources


def _payroll(db: sqlite3.Connection, pid: str) -> list[tuple[str, str]]:
    return db.execute(
        "SELECT y.pay_date, y.pay_frequency_code FROM rk_payroll y JOIN rk_participant p"
        " ON p.plan_id = y.plan_id AND p.ssn = y.ssn WHERE p.participant_id = ? ORDER BY y.pay_date",
        (pid,),
    ).fetchall()


def test_variable_pay_participant_is_biweekly_only_within_three_months(db: sqlite3.Connection) -> None:
    rows = _payroll(db, "P0004-000010")
    recent = Counter(
        f for d, f in rows if THREE_MONTHS_START.isoformat() <= d < RK_REFERENCE_DATE.isoformat()
    )
    everything = Counter(f for _, f in rows)
    assert recent.most_common(1)[0][0] == "B" and recent == {"B": 6, "W": 2}
    assert everything.most_common(1)[0][0] == "W"  # without the 3-month cutoff the answer would be wrong
    assert min(d for d, _ in rows) < "2026-07-01"  # 5-6 months ago
    # Nothing near the cutoff: 90 days, 92 days or "from 2026-08-01" all agree.
    assert not [d for d, _ in rows if "2026-06-27" <= d <= "2026-08-13"]


def test_payroll_of_ordinary_participants(db: sqlite3.Connection) -> None:
    # P0001 is biweekly: ~6-7 payrolls in the last 3 months and older ones before the cutoff.
    rows = _payroll(db, "P0001-000001")
    assert {f for _, f in rows} == {"B"}
    assert 6 <= sum(1 for d, _ in rows if d >= THREE_MONTHS_START.isoformat()) <= 7
    assert any(d < THREE_MONTHS_START.isoformat() for d, _ in rows)
    assert max(d for d, _ in rows) < RK_REFERENCE_DATE.isoformat()
    # In the variable-pay plan, everyone else is paid at one frequency.
    mixed = db.execute(
        "SELECT y.ssn FROM rk_payroll y WHERE plan_id = 'P0004' GROUP BY y.ssn"
        " HAVING COUNT(DISTINCT pay_frequency_code) > 1"
    ).fetchall()
    assert len(mixed) == 1
    # Nobody is paid before hire or after termination.
    outside = db.execute(
        "SELECT COUNT(*) FROM rk_payroll y JOIN rk_participant p ON p.plan_id = y.plan_id AND p.ssn = y.ssn"
        " WHERE y.pay_date <= p.hire_date OR y.pay_date > COALESCE(p.termination_date, '9999-12-31')"
    ).fetchone()
    assert outside == (0,)


def test_add_plan(tmp_path: Path) -> None:
    path = tmp_path / "rk.sqlite"
    seed_recordkeeper(path, plans=2, participants_per_plan=5)
    assert add_plan(path, 7, participants_per_plan=5) == "P0007"
    with pytest.raises(ValueError, match="already exists"):
        add_plan(path, 7)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM rk_participant WHERE plan_id = 'P0007'").fetchone() == (5,)
    conn.close()
