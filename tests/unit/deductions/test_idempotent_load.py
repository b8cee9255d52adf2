"""Property: however coverage changes are split into windows, re-run or replayed out of order, the
payroll deductions table ends equal to applying each record's final state once."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from benefits_hub.deductions.rules import COMPARED_COLUMNS, comparable, deduction_codes, map_coverage
from benefits_hub.deductions.writer import DeductionWriter

SCHEMA = Path(__file__).resolve().parents[3] / "include" / "sql" / "hcm_schema.sql"
CODES = deduction_codes()
KEYS = [("E000010", "MED-PPO"), ("E000010", "DEN-BASIC"), ("E000011", "VIS"), ("E000012", "FSA-HC")]
BASE = datetime(2026, 1, 5, tzinfo=UTC)

change = st.tuples(
    st.integers(0, len(KEYS) - 1),  # which coverage
    st.integers(0, 50_000),  # employee premium in cents
    st.booleans(),  # ended?
)


def coverage(key_index: int, version: int, cents: int, ended: bool) -> dict[str, Any]:
    person, code = KEYS[key_index]
    return {
        "id": f"COV-{key_index}", "subscriber_code": person, "plan_payroll_mapping_code": code,
        "subscriber_premium": f"{cents / 100:.2f}", "org_premium": "10.00", "tax_treatment": "Pre-Tax",
        "change_effective_date": "2026-01-01", "termination_date": "2026-06-30" if ended else None,
        "org_plan_year_starts": "2026-01-01", "coverage_level": "Employee Only",
        "updated_at": (BASE + timedelta(seconds=version)).isoformat().replace("+00:00", "Z"),
    }  # fmt: skip


def table(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[str, ...]]:
    rows = conn.execute(
        f"SELECT person_number, deduction_code, {', '.join(COMPARED_COLUMNS)} FROM hcm_payroll_deduction"
    )
    return {
        (r[0], r[1]): tuple(comparable(c, v) for c, v in zip(COMPARED_COLUMNS, r[2:], strict=True))
        for r in rows
    }


def load(conn: sqlite3.Connection, coverages: list[dict[str, Any]], chunk: int) -> None:
    writer = DeductionWriter(conn, "?", True, "run")
    rows = [map_coverage(c, CODES, known_person=True).row for c in coverages]
    for start in range(0, len(rows), chunk):
        writer.apply(rows[start : start + chunk])


@settings(max_examples=60, deadline=None)
@given(
    changes=st.lists(change, min_size=1, max_size=25),
    cuts=st.lists(st.integers(0, 25), max_size=6),
    read_lag=st.lists(st.integers(0, 25), min_size=8, max_size=8),
    replay_order=st.permutations(list(range(8))),
    reruns=st.lists(st.integers(0, 7), max_size=5),
    chunk=st.integers(1, 5),
)
def test_any_windows_reruns_and_replays_converge(
    tmp_path_factory: Any, changes, cuts, read_lag, replay_order, reruns, chunk
) -> None:
    # PlanSource's state after each change: version v is the index of the change.
    history: list[dict[int, dict[str, Any]]] = []
    state: dict[int, dict[str, Any]] = {}
    for version, (key, cents, ended) in enumerate(changes):
        state = {**state, key: coverage(key, version, cents, ended)}
        history.append(state)
    # Windows of the change log; each is read (a file is made) some time after its last change,
    # and returns the *then current* state of the records changed in it, as the real API does.
    bounds = sorted({0, len(changes), *(c for c in cuts if c < len(changes))})
    files = []
    for i, (start, end) in enumerate(itertools.pairwise(bounds)):
        read_at = min(len(changes) - 1, end - 1 + read_lag[i % len(read_lag)])
        keys = {changes[v][0] for v in range(start, end)}
        files.append([history[read_at][k] for k in sorted(keys)])

    conn = sqlite3.connect(tmp_path_factory.mktemp("db") / "hcm.sqlite")
    conn.executescript(SCHEMA.read_text())
    order = [i for i in replay_order if i < len(files)] + [i for i in reruns if i < len(files)]
    for index in order:
        load(conn, files[index], chunk)

    expected_conn = sqlite3.connect(":memory:")
    expected_conn.executescript(SCHEMA.read_text())
    load(expected_conn, list(history[-1].values()), chunk=100)
    assert table(conn) == table(expected_conn)
