"""Invariants of the export over a generated population: a seeded random mix of the sandbox's HCM with
formula-shaped text in every text field, people with no primary employment, two primary employments,
bad SSNs and unmapped codes. Whatever the mix:

- every person in the HCM is processed (in the census), has an error row, or is counted as not exported
  by status: nobody is silently left out;
- no cell of any CSV the run wrote starts a spreadsheet formula (read back with ``csv``);
- PlanSource received no formula-shaped value.
"""

from __future__ import annotations

import csv
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from benefits_hub.values import looks_like_formula
from tests.e2e.conftest import run_dag

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
DAG_ID = "plansource_hcm_demographic_export"
PERSON_TEXT = (
    "first_name", "middle_name", "last_name", "address_1", "address_2", "city", "home_phone",
    "work_email", "plansource_username",
)  # fmt: skip
EMPLOYMENT_TEXT = ("job_title", "location", "division")
FORMULAS = ("=1+1", "@SUM(A1)", "+cmd|' /C calc'!A0", "-2+3", '=HYPERLINK("http://x")', "\t=1", "\r=1")


def generate(hcm: Path, seed: int) -> dict[str, set[str]]:
    """Mutate the HCM with a seeded mix of bad values; which people got what."""
    rng = random.Random(seed)
    with sqlite3.connect(hcm) as conn:
        people = [r[0] for r in conn.execute("SELECT person_number FROM hcm_person ORDER BY person_number")]
        chosen = rng.sample(people, 70)
        groups = {
            "formula": set(chosen[:25]),
            "no_primary": set(chosen[25:35]),
            "two_primaries": set(chosen[35:42]),
            "bad_ssn": set(chosen[42:52]),
            "unmapped_pay_group": set(chosen[52:60]),
            "formula_in_one_field": set(chosen[60:70]),
        }
        for number in groups["formula"]:
            values = {field: rng.choice(FORMULAS) for field in PERSON_TEXT}
            conn.execute(
                f"UPDATE hcm_person SET {', '.join(f'{f} = ?' for f in values)} WHERE person_number = ?",
                [*values.values(), number],
            )
            job = {field: rng.choice(FORMULAS) for field in EMPLOYMENT_TEXT}
            conn.execute(
                f"UPDATE hcm_employment SET {', '.join(f'{f} = ?' for f in job)} WHERE person_number = ?",
                [*job.values(), number],
            )
        for number in groups["formula_in_one_field"]:
            field = rng.choice(PERSON_TEXT + EMPLOYMENT_TEXT)
            table = "hcm_employment" if field in EMPLOYMENT_TEXT else "hcm_person"
            conn.execute(
                f"UPDATE {table} SET {field} = ? WHERE person_number = ?", (rng.choice(FORMULAS), number)
            )
        conn.executemany(
            "UPDATE hcm_employment SET is_primary = 0 WHERE person_number = ?",
            [(n,) for n in groups["no_primary"]],
        )
        columns = [r[1] for r in conn.execute("PRAGMA table_info(hcm_employment)")]
        for number in groups["two_primaries"]:
            row = conn.execute(
                "SELECT * FROM hcm_employment WHERE person_number = ? AND is_primary = 1", (number,)
            ).fetchone()
            copy = dict(zip(columns, row, strict=True))
            if "id" in copy:
                copy.pop("id")
            copy["ein"] = "99-" + str(rng.randint(1000000, 9999999))
            conn.execute(
                f"INSERT INTO hcm_employment ({', '.join(copy)}) VALUES ({', '.join('?' * len(copy))})",
                list(copy.values()),
            )
        conn.executemany(
            "UPDATE hcm_person SET ssn = ? WHERE person_number = ?",
            [
                (rng.choice(["000-12-3456", "123-00-4567", "666-12-3456", "987-65-4320"]), n)
                for n in groups["bad_ssn"]
            ],
        )
        conn.executemany(
            "UPDATE hcm_employment SET pay_group_code = 'NOPE' WHERE person_number = ?",
            [(n,) for n in groups["unmapped_pay_group"]],
        )
    return groups


def csv_cells(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


@pytest.mark.parametrize("seed", [7])
def test_everyone_is_processed_or_has_an_error_row_and_no_formula_gets_through(
    sandbox: Any, seed: int
) -> None:
    groups = generate(sandbox.hcm_db_path, seed)
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        everyone = {r[0] for r in conn.execute("SELECT person_number FROM hcm_person")}

    outcome = run_dag(DAG_ID, {"delta": False})

    summary = outcome.summary
    assert summary is not None and outcome.task_states["deliver"] == "success", summary
    errored = {row["record_key"] for row in outcome.error_rows()}
    [census_path] = [f for f in summary["output_files"] if f.endswith("/census.csv")]
    with Path(census_path.removeprefix("file://")).open(newline="") as handle:
        in_census = {row["employee_number"] for row in csv.DictReader(handle)}
    # Nobody silently left out: each person once, in the census or the error file, or counted as a
    # status the tables do not export.
    assert not in_census & errored
    assert len(everyone) == len(in_census) + len(errored) + summary["not_exported_status"], summary
    assert everyone >= in_census | errored
    # Each deliberately bad person is in the error file.
    for group in ("formula", "no_primary", "two_primaries", "bad_ssn", "unmapped_pay_group"):
        assert groups[group] <= errored, (group, groups[group] - errored)
    assert groups["formula_in_one_field"] <= errored

    # No CSV the run wrote holds a cell a spreadsheet would run.
    written = [*summary["error_files"], *summary["output_files"]]
    for url in written:
        path = Path(url.removeprefix("file://"))
        if path.suffix == ".csv":
            assert not [c for c in csv_cells(path) if looks_like_formula(c)], path.name

    # PlanSource received none of them.
    with sqlite3.connect(sandbox.plansource_state_path) as conn:
        conn.row_factory = sqlite3.Row
        received = [dict(r) for r in conn.execute("SELECT * FROM subscriber")]
    planted = [
        (s["employee_number"], k)
        for s in received
        for k, v in s.items()
        if isinstance(v, str) and looks_like_formula(v)
    ]
    assert planted == []
