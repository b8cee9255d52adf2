"""The HCM generator: deterministic, the documented special cases where documented."""

from __future__ import annotations

import csv
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from stdnum.us import ssn as us_ssn

from hub_sandbox import generator
from hub_sandbox.generator import seed_hcm, special_people, touch_employees
from hub_sandbox.plansource_api import seed_plansource

XREF = Path(generator.__file__).resolve().parents[1] / "xref"
BAD = ("invalid_ssn", "subscriber_id_mismatch", "username_mismatch", "ssn_mismatch", "unmapped_code",
       "test_subscriber", "new_hire")  # fmt: skip


def _dump(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return [
            *conn.execute("SELECT * FROM hcm_person ORDER BY person_number"),
            *conn.execute("SELECT * FROM hcm_employment ORDER BY person_number, ein"),
        ]


def _codes(name: str) -> set[str]:
    with (XREF / name).open() as fh:
        return {row["hcm_code"] for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def hcm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("hcm") / "hcm.sqlite"
    seed_hcm(db, 2000, seed=42)
    return db


def test_same_seed_same_database_and_prefix_stable(tmp_path: Path, hcm: Path) -> None:
    seed_hcm(tmp_path / "a.sqlite", 2000, seed=42)
    assert _dump(tmp_path / "a.sqlite") == _dump(hcm)

    seed_hcm(tmp_path / "small.sqlite", 50, seed=42)
    with sqlite3.connect(tmp_path / "small.sqlite") as small, sqlite3.connect(hcm) as big:
        q = "SELECT * FROM hcm_person WHERE person_number <= 'E000050' ORDER BY person_number"
        assert small.execute(q).fetchall() == big.execute(q).fetchall()
        assert len(small.execute(q).fetchall()) == 50

    seed_hcm(tmp_path / "other.sqlite", 50, seed=7)
    assert _dump(tmp_path / "other.sqlite") != _dump(tmp_path / "small.sqlite")


@pytest.mark.parametrize("employees", [10, 50, 200, 2000])
def test_categories_present_and_bad_ones_disjoint(employees: int) -> None:
    people = special_people(employees)
    for name in BAD:
        assert people[name], name
        assert len(people[name]) == max(1, employees // 200) or employees < 200
    if employees >= 50:
        assert all(people[name] for name in people), {k: len(v) for k, v in people.items()}
    seen: set[str] = set()
    for name in BAD:
        assert not seen & set(people[name]), name
        seen |= set(people[name])
    assert not seen & set(people["terminated"] + people["rehired"] + people["on_leave"])


def test_mix_matches_the_documented_shares(hcm: Path) -> None:
    people = special_people(2000)
    assert len(people["multi_ein"]) == 160  # 8 %
    assert len(people["terminated"]) == 100  # 5 %
    assert len(people["rehired"]) == len(people["on_leave"]) == 60  # 3 %
    with sqlite3.connect(hcm) as conn:
        status = dict(conn.execute(
            "SELECT employee_status_code, COUNT(*) FROM hcm_employment WHERE is_primary = 1 GROUP BY 1"
        ).fetchall())  # fmt: skip
        unions = conn.execute("SELECT COUNT(*) FROM hcm_employment WHERE union_code IS NOT NULL").fetchone()[
            0
        ]
    assert status == {"A": 2000 - 100 - 60 - 20, "T": 100, "L": 60, "R": 20}
    assert 100 < unions < 300  # ~10 %


def test_ssns_valid_unique_except_the_invalid_ones(hcm: Path) -> None:
    invalid = set(special_people(2000)["invalid_ssn"])
    with sqlite3.connect(hcm) as conn:
        rows = conn.execute("SELECT person_number, ssn FROM hcm_person").fetchall()
    assert len({s for _, s in rows}) == len(rows)
    for number, value in rows:
        assert len(value) == 9 and value.isdigit()
        assert us_ssn.is_valid(value) == (number not in invalid), number
    kinds = {v[:3] == "000" or v[:3] == "666" or v[0] == "9" or v[3:5] == "00" or v[5:] == "0000"
             for n, v in rows if n in invalid}  # fmt: skip
    assert kinds == {True}


def test_rows_follow_the_categories_and_xref(hcm: Path) -> None:
    people = special_people(2000)
    with sqlite3.connect(hcm) as conn:
        conn.row_factory = sqlite3.Row
        emp = {
            r["person_number"]: r for r in conn.execute("SELECT * FROM hcm_employment WHERE is_primary = 1")
        }
        person = {r["person_number"]: r for r in conn.execute("SELECT * FROM hcm_person")}
        second = conn.execute("SELECT person_number FROM hcm_employment WHERE is_primary = 0").fetchall()
    assert sorted(n for (n,) in second) == people["multi_ein"]
    for n in people["new_hire"]:
        assert person[n]["plansource_subscriber_id"] is None and person[n]["plansource_username"] is None
    for n in people["unmapped_code"]:
        assert emp[n]["pay_group_code"] == "XX-ZZ"
    for n in people["terminated"]:
        assert emp[n]["employee_status_code"] == "T" and emp[n]["termination_date"]
        assert emp[n]["termination_reason_code"] in _codes("termination_reason.csv")
    for n in people["rehired"]:
        assert emp[n]["employee_status_code"] == "A" and emp[n]["termination_date"] is None
        assert emp[n]["hire_date"] > emp[n]["original_hire_date"]
    for n in people["on_leave"]:
        assert emp[n]["employee_status_code"] == "L"
    unmapped = set(people["unmapped_code"])
    for n, row in emp.items():
        assert row["employment_type_code"] in _codes("employment_type.csv")
        assert row["pay_type_code"] in _codes("pay_type.csv")
        assert n in unmapped or row["pay_group_code"] in _codes("pay_group.csv")
        assert row["union_code"] is None or row["union_code"] in _codes("union_code.csv")
    for row in person.values():
        assert row["gender_code"] in _codes("gender.csv")
        assert row["marital_status_code"] in _codes("marital_status.csv")
        assert "2025-04-01 12:00:00" <= row["updated_at"] <= "2025-06-30 12:00:00"


def test_touch_employees_makes_a_delta(tmp_path: Path) -> None:
    db = tmp_path / "hcm.sqlite"
    seed_hcm(db, 20)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    touched = touch_employees(
        db, ["E000001", "E000002"], when, {"city": "Dayton", "employee_status_code": "L"}
    )
    assert touched == 2
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT p.person_number, p.city, p.updated_at, e.employee_status_code, e.updated_at"
            " FROM hcm_person p JOIN hcm_employment e USING (person_number)"
            " WHERE e.is_primary = 1 AND p.updated_at >= '2026-01-01' ORDER BY 1"
        ).fetchall()
    assert rows == [
        (n, "Dayton", "2026-01-02 03:04:05", "L", "2026-01-02 03:04:05") for n in ("E000001", "E000002")
    ]
    with pytest.raises(ValueError, match="unknown HCM fields"):
        touch_employees(db, ["E000001"], when, {"salary": 1})


def test_plansource_seed_holds_the_mismatches(tmp_path: Path, hcm: Path) -> None:
    state = tmp_path / "ps.sqlite"
    assert seed_plansource(state, hcm) == 2000 - len(special_people(2000)["new_hire"])
    people = special_people(2000)
    with sqlite3.connect(state) as ps, sqlite3.connect(hcm) as h:
        sub = {
            r[0]: r[1:]
            for r in ps.execute("SELECT employee_number, id, user_name, ssn, test_employee FROM subscriber")
        }
        hrow = {
            r[0]: r[1:]
            for r in h.execute(
                "SELECT person_number, plansource_subscriber_id, plansource_username, ssn FROM hcm_person"
            )
        }
    for n in people["new_hire"]:
        assert n not in sub
    differs = {"subscriber_id_mismatch": 0, "username_mismatch": 1, "ssn_mismatch": 2}
    for n, (ps_id, user, ssn_value, test) in sub.items():
        h_id, h_user, h_ssn = hrow[n]
        for cat, pos in differs.items():
            assert ((ps_id, user, ssn_value)[pos] != (h_id, h_user, h_ssn)[pos]) == (n in people[cat]), (
                n,
                cat,
            )
        assert bool(test) == (n in people["test_subscriber"])
    for n in people["ssn_mismatch"]:
        assert us_ssn.is_valid(sub[n][2])
