"""PlanSource payroll coverages: the generated records and the API that serves them."""

from __future__ import annotations

import csv
import re
import sqlite3
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from hub_sandbox import Sandbox, coverages
from hub_sandbox.client import SandboxClient
from hub_sandbox.coverages import (
    CURRENT_PLAN_YEAR_START,
    PRIOR_PLAN_YEAR_START,
    coverage_counts,
    iso_date,
    life_event_people,
    special_coverages,
)
from hub_sandbox.generator import seed_hcm, special_people, subscriber_id
from hub_sandbox.plansource_api import seed_plansource

XREF = Path(coverages.__file__).resolve().parents[1] / "xref" / "deduction_code.csv"
PEOPLE = special_people(200)
SPECIAL = special_coverages(200)
CURRENT_WINDOW = {"start_date": "2025-10-01", "end_date": "2026-10-31"}
PRIOR_WINDOW = {"start_date": "2024-10-01", "end_date": "2025-06-30"}
MONEY = re.compile(r"^-?\d+\.\d{2}$")
# People the write test changes; the read tests leave them out of exact comparisons.
WRITTEN = ("E000024", "E000025", "E000026")


def _mapped_codes() -> set[str]:
    with XREF.open() as fh:
        return {row["plansource_code"] for row in csv.DictReader(fh)}


def _person(rec: dict[str, Any]) -> str:
    """The employee a generated record belongs to (from its id; an unknown_employee record too)."""
    return "E" + rec["id"][5:11]


def _walk(api: SandboxClient, per_page: int = 500, **params: Any) -> list[dict[str, Any]]:
    """Every record of a query, following links.next; checks the page envelope on the way."""
    records: list[dict[str, Any]] = []
    page = 1
    while True:
        resp = api.call(
            "GET", "/payroll_coverages_subscribers", params={**params, "page": page, "per_page": per_page}
        )
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        assert set(data) == {"total", "per_page", "page", "links", "payroll_coverages"}
        assert (data["page"], data["per_page"]) == (page, per_page)
        assert len(data["payroll_coverages"]) <= per_page
        records += data["payroll_coverages"]
        if not data["links"]["next"]:
            assert f"page={page}&" in data["links"]["last"]
            assert len(records) == data["total"]
            return records
        assert f"page={page + 1}&" in data["links"]["next"]
        page += 1


@pytest.fixture(scope="module")
def all_records(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Every generated record straight from the state file, as the API would answer it."""
    conn = sqlite3.connect(sandbox.plansource_state_path)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM payroll_coverage WHERE id LIKE 'PC2%' ORDER BY id").fetchall()
        return [{**coverages.row_to_record(r), "plan_year": r["plan_year"]} for r in rows]
    finally:
        conn.close()


def test_every_known_person_has_1_to_4_coverages_a_plan_year(all_records: list[dict[str, Any]]) -> None:
    benefits: dict[tuple[str, int], set[str]] = defaultdict(set)
    for rec in all_records:
        benefits[(_person(rec), rec["plan_year"])].add(rec["benefit_lookup_code"])
    known = {f"E{i:06d}" for i in range(1, 201)} - set(PEOPLE["new_hire"])
    assert {n for n, _ in benefits} == known
    for year in (2025, 2026):
        assert all(1 <= len(benefits[(n, year)]) <= 4 for n in known)
    codes = {r["plan_payroll_mapping_code"] for r in all_records}
    assert codes == _mapped_codes() | {"ACC-INDEMNITY"}


def test_records_hold_the_documented_shapes(all_records: list[dict[str, Any]]) -> None:
    forms = set()
    for rec in all_records:
        assert list(rec)[:2] == ["id", "subscriber_code"] and rec["changed_fields"] == []
        for field in (
            "subscriber_premium",
            "org_premium",
            "subscriber_pretax_premium",
            "subscriber_posttax_premium",
        ):
            assert MONEY.match(rec[field]), field
        premium = Decimal(rec["subscriber_premium"])
        assert (
            Decimal(rec["subscriber_pretax_premium"]) + Decimal(rec["subscriber_posttax_premium"]) == premium
        )
        assert Decimal(rec["org_premium"]) >= 0
        assert rec["tax_treatment"] in ("Pre-Tax", "Post-Tax")
        assert rec["subscriber_pay_frequency"].endswith(f"({rec['subscriber_total_paydays']} per year)")
        assert isinstance(rec["current"], bool) and isinstance(rec["test_employee"], bool)
        assert rec["updated_at"] < "2026-11-01"
        start, end = coverages.UPDATE_WINDOWS[rec["plan_year"]]
        assert start.isoformat() <= rec["updated_at"][:10] <= end.isoformat()
        plan_start = {2025: PRIOR_PLAN_YEAR_START, 2026: CURRENT_PLAN_YEAR_START}[rec["plan_year"]]
        assert iso_date(rec["org_plan_year_starts"]) == plan_start.isoformat()
        value = rec["change_effective_date"]
        forms.add("T" if "T" in value else "/" if "/" in value else "-")
        if rec["id"] not in SPECIAL["negative_amount"]:
            assert premium >= 0
    assert forms == {"-", "/", "T"}
    # The first day of each window holds a change, so an initial import starts there.
    for year, (start, _) in coverages.UPDATE_WINDOWS.items():
        assert min(r["updated_at"] for r in all_records if r["plan_year"] == year)[:10] == start.isoformat()


def test_life_events_terminations_and_test_employees(all_records: list[dict[str, Any]]) -> None:
    by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in all_records:
        by_person[_person(rec)].append(rec)
    events = life_event_people(200)
    assert len(events) == 10
    for number in events:
        medical = [
            r for r in by_person[number] if r["plan_year"] == 2026 and r["benefit_lookup_code"] == "medical"
        ]
        old, new = sorted(medical, key=lambda r: r["id"])
        assert (old["current"], new["current"]) == (False, True)
        assert iso_date(old["change_effective_date"]) == "2026-01-01"
        new_start = date.fromisoformat(iso_date(new["change_effective_date"]) or "")
        assert iso_date(old["termination_date"]) == (new_start - timedelta(days=1)).isoformat()
        assert old["subscriber_premium"] != new["subscriber_premium"]
    assert sum(not r["current"] for r in all_records) == len(events)

    for number in PEOPLE["terminated"] + PEOPLE["retired"]:
        current = [r for r in by_person[number] if r["plan_year"] == 2026]
        assert current and all(r["termination_date"] and r["termination_reason"] for r in current)
        assert not any(r["termination_date"] for r in by_person[number] if r["plan_year"] == 2025)
    tested = {n for n, recs in by_person.items() if any(r["test_employee"] for r in recs)}
    assert tested == set(PEOPLE["test_subscriber"])
    assert all(r["test_employee"] for n in tested for r in by_person[n])


def test_failing_records_sit_at_fixed_positions(all_records: list[dict[str, Any]]) -> None:
    assert SPECIAL == {
        "unknown_employee": ["PC26000001300"],
        "unmapped_code": ["PC26000001400"],
        "negative_amount": ["PC26000001500"],
        "end_before_start": ["PC26000001600"],
    }
    for employees in (50, 1000):
        cats = special_coverages(employees)
        ids = [i for v in cats.values() for i in v]
        assert all(cats.values()) and len(ids) == len(set(ids))
    by_id = {r["id"]: r for r in all_records}
    numbers = {"E" + i[5:11] for ids in SPECIAL.values() for i in ids}
    assert not any(numbers & set(people) for people in PEOPLE.values())  # otherwise-good people
    mapped = _mapped_codes()
    for cat, ids in SPECIAL.items():
        for cid in ids:
            rec = by_id[cid]
            assert rec["plan_year"] == 2026
            bad = {
                "unknown_employee": rec["subscriber_code"].startswith("X"),
                "unmapped_code": rec["plan_payroll_mapping_code"] not in mapped,
                "negative_amount": rec["subscriber_premium"] == "-12.50",
                "end_before_start": rec["termination_date"] is not None
                and iso_date(rec["termination_date"]) < iso_date(rec["change_effective_date"]),  # type: ignore[operator]
            }
            assert [k for k, v in bad.items() if v] == [cat], cid
    # Nothing else fails those rules.
    for rec in all_records:
        if rec["id"] in {i for ids in SPECIAL.values() for i in ids}:
            continue
        assert rec["subscriber_code"].startswith("E") and rec["plan_payroll_mapping_code"] in mapped
        if rec["termination_date"]:
            assert iso_date(rec["termination_date"]) >= iso_date(rec["change_effective_date"])  # type: ignore[operator]


def test_generation_is_deterministic_and_prefix_stable(tmp_path: Path) -> None:
    def dump(employees: int, seed: int, name: str) -> list[tuple[Any, ...]]:
        seed_hcm(tmp_path / f"{name}.hcm", employees, seed)
        seed_plansource(tmp_path / f"{name}.ps", tmp_path / f"{name}.hcm", seed)
        with sqlite3.connect(tmp_path / f"{name}.ps") as conn:
            return conn.execute("SELECT * FROM payroll_coverage ORDER BY id").fetchall()

    a, b = dump(300, 42, "a"), dump(300, 42, "b")
    assert a == b and len(a) > 300 * 2
    small = dump(60, 42, "small")
    assert [r[1:] for r in a if r[1][4:11] <= "0000060"] == [r[1:] for r in small]
    assert dump(60, 7, "other") != small
    counts = coverage_counts(tmp_path / "a.ps")
    assert counts["total"] == len(a) == counts["prior"] + counts["current"]


def test_pages_links_and_per_page_cap(api: SandboxClient, sandbox: Sandbox) -> None:
    too_many = api.call("GET", "/payroll_coverages_subscribers", params={**CURRENT_WINDOW, "per_page": 501})
    assert too_many.status_code == 400 and "per_page" in too_many.json()["errors"]["message"]
    small = _walk(api, per_page=37, **CURRENT_WINDOW)
    big = _walk(api, per_page=500, **CURRENT_WINDOW)
    assert small == big and len(big) > 500
    keys = [(r["updated_at"], r["id"]) for r in big]
    assert keys == sorted(keys) and len({r["id"] for r in big}) == len(big)
    one = api.call(
        "GET", "/payroll_coverages_subscribers", params={**CURRENT_WINDOW, "page": 2, "per_page": 37}
    )
    assert one.json()["data"]["payroll_coverages"] == small[37:74]  # the next page after a remembered one
    jump = api.call(
        "GET", "/payroll_coverages_subscribers", params={**CURRENT_WINDOW, "page": 3, "per_page": 41}
    )
    assert jump.json()["data"]["payroll_coverages"] == big[82:123]  # random access (no page 2 before)
    empty = api.call(
        "GET", "/payroll_coverages_subscribers", params={"start_date": "2030-01-01", "end_date": "2030-01-02"}
    )
    data = empty.json()["data"]
    assert data["total"] == 0 and data["payroll_coverages"] == [] and data["links"]["next"] is None


def test_window_plan_year_and_test_filters(api: SandboxClient, all_records: list[dict[str, Any]]) -> None:
    def expected(start: str, end: str, year: int | None, with_test: bool) -> set[str]:
        return {
            r["id"]
            for r in all_records
            if start <= r["updated_at"][:10] <= end
            and (year is None or r["plan_year"] == year)
            and (with_test or not r["test_employee"])
            and _person(r) not in WRITTEN
        }

    def got(**params: Any) -> set[str]:
        records = _walk(api, **params)
        return {r["id"] for r in records if r["id"].startswith("PC2") and _person(r) not in WRITTEN}

    current = got(**CURRENT_WINDOW, current="true")
    assert current == expected("2025-10-01", "2026-10-31", 2026, False) and current
    assert all(i.startswith("PC26") for i in current)
    prior = got(**PRIOR_WINDOW, previous="true")
    assert prior == expected("2024-10-01", "2025-06-30", 2025, False) and prior
    assert all(i.startswith("PC25") for i in prior)
    assert got(**CURRENT_WINDOW, previous="true") == set()  # prior-year changes ended 2025-06-30
    narrow = got(start_date="2025-11-03", end_date="2025-11-09")
    assert narrow == expected("2025-11-03", "2025-11-09", None, False) and narrow
    with_test = got(**CURRENT_WINDOW, current="true", include_test="true")
    test_ids = with_test - current
    assert (
        test_ids
        and {r["id"] for r in all_records if r["test_employee"] and r["plan_year"] == 2026} == test_ids
    )
    both = api.call(
        "GET",
        "/payroll_coverages_subscribers",
        params={**CURRENT_WINDOW, "current": "true", "previous": "true"},
    )
    assert both.status_code == 400


def test_one_subscriber(api: SandboxClient, all_records: list[dict[str, Any]]) -> None:
    window = {"start_date": "2024-01-01", "end_date": "2026-10-31"}
    number = life_event_people(200)[0]
    mine = [r for r in all_records if r["subscriber_code"] == number]
    resp = api.call(
        "GET", f"/payroll_coverages_subscriber/{number}", params={**window, "is_custom_id": "true"}
    )
    data = resp.json()["data"]
    assert data["total"] == len(mine) == len(data["payroll_coverages"])
    assert {r["id"] for r in data["payroll_coverages"]} == {r["id"] for r in mine}
    by_id = api.call(
        "GET",
        f"/payroll_coverages_subscriber/{subscriber_id(int(number[1:]))}",
        params={**window, "current": "true"},
    )
    assert {r["id"] for r in by_id.json()["data"]["payroll_coverages"]} == {
        r["id"] for r in mine if r["plan_year"] == 2026
    }
    hire = api.call(
        "GET",
        f"/payroll_coverages_subscriber/{PEOPLE['new_hire'][0]}",
        params={**window, "is_custom_id": "true"},
    )
    assert hire.status_code == 404
    assert api.admin("GET", "/coverages", params={"employee_number": number}) == [
        {k: v for k, v in r.items() if k != "plan_year"} for r in mine
    ]


def test_bad_parameters_answer_400_without_echoing_values(api: SandboxClient) -> None:
    ssn = "123-45-6789"
    cases = [
        (
            {"start_date": ssn, "end_date": "2026-01-01"},
            "start_date date is not a valid YYYY-MM-DD date format.",
        ),
        (
            {"start_date": "2026-01-01", "end_date": "2026/01/31"},
            "end_date date is not a valid YYYY-MM-DD date format.",
        ),
        ({"end_date": "2026-01-01"}, "start_date is required."),
        ({"start_date": "2026-01-01"}, "end_date is required."),
        ({"start_date": "2026-02-01", "end_date": "2026-01-01"}, "end_date must not be before start_date."),
        ({**CURRENT_WINDOW, "include_test": ssn}, "include_test must be true or false."),
    ]
    for params, message in cases:
        resp = api.call("GET", "/payroll_coverages_subscribers", params=params)
        assert resp.status_code == 400
        assert resp.json()["errors"] == {"http_status": 400, "message": message, "error_code": "bad_request"}
        assert "6789" not in resp.text
    resp = api.call("GET", "/payroll_coverages_subscribers", params={**CURRENT_WINDOW, "page": ssn})
    assert resp.status_code == 400 and "6789" not in resp.text
    bad = requests.post(
        f"{api.base}/sandbox/coverages",
        json={"coverages": [{"id": SPECIAL["negative_amount"][0], "subscriber_premium": ssn}]},
        timeout=10,
    )
    assert bad.status_code == 400 and "6789" not in bad.text
    assert "subscriber_premium" in bad.json()["errors"]["message"]
    unauthenticated = requests.get(
        f"{api.base}/admin/v2/payroll_coverages_subscribers", params=CURRENT_WINDOW, timeout=10
    )
    assert unauthenticated.status_code == 401


def test_sandbox_changes_show_up_in_todays_window_only(api: SandboxClient) -> None:
    today = datetime.now(UTC).date()
    today_window = {"start_date": today.isoformat(), "end_date": today.isoformat()}
    until_yesterday = {"start_date": "2024-01-01", "end_date": (today - timedelta(days=1)).isoformat()}
    premium_person, event_person, leaver = WRITTEN
    before = {r["id"]: r for r in api.admin("GET", "/coverages", params={"employee_number": event_person})}
    medical = next(
        r for r in before.values() if r["id"].startswith("PC26") and r["benefit_lookup_code"] == "medical"
    )
    premium_id = f"PC26{premium_person[1:].zfill(7)}00"
    leaver_ids = [
        r["id"]
        for r in api.admin("GET", "/coverages", params={"employee_number": leaver})
        if r["id"].startswith("PC26")
    ]
    new_start = (today + timedelta(days=7)).isoformat()
    closed = (today + timedelta(days=6)).isoformat()

    result = api.admin(
        "POST",
        "/coverages",
        json={
            "coverages": [
                {"id": premium_id, "subscriber_premium": "123.45"},
                {"id": medical["id"], "termination_date": closed, "current": False},
                {
                    "subscriber_code": event_person,
                    "plan_payroll_mapping_code": medical["plan_payroll_mapping_code"],
                    "change_effective_date": new_start,
                    "coverage_level": "Family",
                    "subscriber_premium": 250,
                },
                *(
                    {"id": i, "termination_date": "2026-11-30", "termination_reason": "Voluntary Resignation"}
                    for i in leaver_ids
                ),
            ]
        },
    )
    assert [r["status"] for r in result["results"]] == [
        "updated",
        "updated",
        "created",
        *["updated"] * len(leaver_ids),
    ]
    new_id = result["ids"][2]
    changed = set(result["ids"])

    todays = {r["id"]: r for r in _walk(api, **today_window)}
    assert set(todays) == changed
    assert todays[premium_id]["subscriber_premium"] == "123.45"
    assert todays[premium_id]["subscriber_pretax_premium"] == "123.45"  # the split follows the premium
    assert "subscriber_premium" in todays[premium_id]["changed_fields"]
    assert todays[medical["id"]]["current"] is False and todays[medical["id"]]["termination_date"] == closed
    new = todays[new_id]
    assert (new["subscriber_premium"], new["coverage_level"], new["current"]) == ("250.00", "Family", True)
    assert (new["first_name"], new["ssn"]) == (medical["first_name"], medical["ssn"])
    assert all(todays[i]["termination_date"] == "2026-11-30" for i in leaver_ids)
    assert not changed & {r["id"] for r in _walk(api, **until_yesterday)}
    # Sent again with the natural key, the new record is updated, not duplicated.
    again = api.admin(
        "POST",
        "/coverages",
        json={
            "coverages": [
                {
                    "subscriber_code": event_person,
                    "plan_payroll_mapping_code": medical["plan_payroll_mapping_code"],
                    "change_effective_date": new_start.replace("-", "/"),
                    "subscriber_premium": "251.00",
                }
            ]
        },
    )
    assert again["ids"] == [new_id] and again["results"][0]["status"] == "updated"
