"""The HCM Demographic Export, run for real (dag.test) against the sandbox's real servers."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from hub_sandbox.generator import special_people, touch_employees
from tests.e2e.conftest import run_dag

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
DAG_ID = "plansource_hcm_demographic_export"
SPECIAL = special_people(200)
BAD = {
    cat: SPECIAL[cat][0]
    for cat in ("invalid_ssn", "subscriber_id_mismatch", "username_mismatch", "ssn_mismatch", "unmapped_code")
}
NEW_HIRE = SPECIAL["new_hire"][0]
_special = {n for people in SPECIAL.values() for n in people}
GOOD = [f"E{i:06d}" for i in range(10, 200) if f"E{i:06d}" not in _special][:6]


def hcm_edit(sandbox: Any, person_numbers: list[str], changes: dict[str, Any]) -> None:
    """An HCM edit now. HCM timestamps have whole seconds, and a window ends before the second its run
    started in (that second belongs to the next window): wait for the next second, so the run that
    follows covers this edit."""
    touch_employees(sandbox.hcm_db_path, person_numbers, datetime.now(UTC), changes)
    time.sleep(1.05)


def overlapped(window_end: str) -> str:
    """Where the next window starts after a run that ended its window at ``window_end``: the
    configured overlap before it (late commits, see benefits_hub.window)."""
    from datetime import datetime

    from benefits_hub.window import configured_overlap

    return (datetime.fromisoformat(window_end) - configured_overlap()).isoformat()


def changes_for(sandbox: Any, employee_number: str) -> list[dict[str, Any]]:
    body = requests.get(
        f"{sandbox.plansource_url}/sandbox/changes", params={"employee_number": employee_number}, timeout=10
    ).json()
    return body["data"]


def wait_for_census(plansource_admin: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        imports = plansource_admin.census_imports()
        if imports:
            return imports
        time.sleep(0.3)
    return []


def test_full_run_delivers_good_employees_and_ends_completed_with_errors(
    sandbox: Any, plansource_admin: Any
) -> None:
    assert plansource_admin.subscriber(NEW_HIRE) is None
    before = plansource_admin.stats()

    outcome = run_dag(DAG_ID, {"delta": False})

    # Completed with Errors: the run is failed, but its summary is there.
    assert outcome.state == "failed"
    assert outcome.task_states["deliver"] == "success"
    summary = outcome.summary
    assert summary is not None and summary["status"] == "Completed with Errors"
    assert summary["records_processed"] == 200
    assert summary["errors"] == len(BAD)
    assert summary["records_created"] == 1
    assert summary["integration_type"] == "Export"
    assert summary["integration_reference_id"] == outcome.run_id

    # Good employees still flowed: the new hire now exists in PlanSource, once.
    created = plansource_admin.subscriber(NEW_HIRE)
    assert created is not None and created["employee_number"] == NEW_HIRE
    assert plansource_admin.stats()["subscribers"] == before["subscribers"] + 1

    # The error file: one row per bad employee, the field named, SSNs masked.
    rows = outcome.error_rows()
    by_person = {row["record_key"]: row for row in rows}
    assert set(by_person) == set(BAD.values())
    assert by_person[BAD["invalid_ssn"]]["field"] == "ssn"
    assert by_person[BAD["invalid_ssn"]]["value"].startswith("***-**-")
    assert by_person[BAD["subscriber_id_mismatch"]]["field"] == "plansource_subscriber_id"
    assert by_person[BAD["username_mismatch"]]["field"] == "user_name"
    assert by_person[BAD["ssn_mismatch"]]["field"] == "ssn"
    assert by_person[BAD["ssn_mismatch"]]["rule"] == "identity:ssn"
    assert by_person[BAD["unmapped_code"]]["rule"] == "xref:pay_group"
    for row in rows:
        assert row["reason"], row
        assert not any(ch.isdigit() for ch in row["value"].replace("***-**-", "")[:0])
    # A mismatch is never an overwrite.
    mismatched = plansource_admin.subscriber(BAD["subscriber_id_mismatch"])
    assert changes_for(sandbox, BAD["subscriber_id_mismatch"]) == []
    assert mismatched is not None

    # A full run also delivers the census file, atomically (no temporary file left behind).
    imports = wait_for_census(plansource_admin)
    assert len(imports) == 1
    assert imports[0]["rows"] == summary["employees_processed"]
    inbound = sandbox.sftp_root / "inbound"
    assert not [p for p in inbound.iterdir() if p.name.endswith(".part")]

    # The log ends with the Run Summary and one line saying why the run fails; no Python traceback.
    log = outcome.log
    assert "Traceback" not in log
    assert f"PlanSource HCM Demographic Export ended Completed with Errors: {len(BAD)} record(s)" in log
    assert log.index("Run Summary") < log.index("ended Completed with Errors")


def test_rerun_of_the_same_window_creates_no_duplicates(sandbox: Any, plansource_admin: Any) -> None:
    first = run_dag(DAG_ID, {"delta": False})
    assert first.summary["records_created"] == 1
    after_first = plansource_admin.stats()

    second = run_dag(DAG_ID, {"delta": False})
    assert second.summary["status"] == "Completed with Errors"  # the same bad employees, still explained
    assert second.summary["records_created"] == 0
    assert second.summary["records_updated"] == 0
    after_second = plansource_admin.stats()
    assert after_second["subscribers"] == after_first["subscribers"]
    assert after_second["creates"] == after_first["creates"]
    assert after_second["updates"] == after_first["updates"]
    assert [c["kind"] for c in changes_for(sandbox, NEW_HIRE)] == ["created"]


def test_delta_sends_only_changed_employees_and_only_changed_fields(
    sandbox: Any, plansource_admin: Any
) -> None:
    changed = GOOD[:3]
    hcm_edit(sandbox, changed, {"city": "Shelbyville"})

    outcome = run_dag(DAG_ID, {"delta": True, "lookback_days": 1})

    summary = outcome.summary
    assert outcome.state == "success", summary
    assert summary["status"] == "Completed"
    assert summary["records_processed"] == len(changed)
    assert summary["records_updated"] == len(changed)
    assert summary["records_created"] == 0
    for number in changed:
        [change] = changes_for(sandbox, number)
        assert change["changed_fields"] == ["city"] and change["fields"] == ["city"]
        assert plansource_admin.subscriber(number)["city"] == "Shelbyville"
    untouched = GOOD[3]
    assert changes_for(sandbox, untouched) == []
    assert wait_for_census(plansource_admin, timeout=1.5) == []  # a delta sends no census file


def test_scheduled_style_delta_covers_the_time_since_the_last_successful_run(sandbox: Any) -> None:
    hcm_edit(sandbox, GOOD[:1], {"city": "Ogdenville"})
    first = run_dag(DAG_ID, {"delta": True, "lookback_days": 1})
    assert first.summary["status"] == "Completed"

    # Lookback Days empty: the window starts where the last successful full-scope run ended.
    hcm_edit(sandbox, GOOD[1:3], {"city": "North Haverbrook"})
    second = run_dag(DAG_ID, {"delta": True})
    assert second.summary["status"] == "Completed"
    assert second.summary["window_start"] == overlapped(first.summary["window_end"])
    # The overlap reads the first run's change again; only the two new changes are sent.
    assert second.summary["records_processed"] == 3
    assert second.summary["records_updated"] == 2
    assert [c["changed_fields"] for c in changes_for(sandbox, GOOD[0])] == [["city"]]


def test_narrowed_run_does_not_move_the_window(sandbox: Any) -> None:
    hcm_edit(sandbox, GOOD[:1], {"city": "Capital City"})
    baseline = run_dag(DAG_ID, {"delta": True, "lookback_days": 1})
    assert baseline.summary["status"] == "Completed"
    narrowed = run_dag(DAG_ID, {"delta": True, "include_employees": GOOD[4]})
    assert narrowed.summary["status"] == "Completed"
    hcm_edit(sandbox, GOOD[1:2], {"city": "Cypress Creek"})
    after = run_dag(DAG_ID, {"delta": True})
    assert after.summary["window_start"] == overlapped(baseline.summary["window_end"])


def test_include_employees_narrows_and_reports_unknown_person(sandbox: Any) -> None:
    hcm_edit(sandbox, GOOD[:2], {"city": "Brockway"})
    outcome = run_dag(DAG_ID, {"delta": False, "include_employees": f"{GOOD[0]},{GOOD[1]},E999999"})

    summary = outcome.summary
    assert summary["status"] == "Completed with Errors" and outcome.state == "failed"
    assert summary["records_processed"] == 2
    assert summary["records_updated"] == 2
    assert summary["errors"] == 1
    [row] = outcome.error_rows()
    assert row["record_key"] == "E999999" and row["rule"] == "hcm:unknown_person"
    assert "not in the HCM" in row["reason"]


def test_termination_then_rehire(sandbox: Any, plansource_admin: Any) -> None:
    person = GOOD[5]
    hcm_edit(
        sandbox, [person],
        {"employee_status_code": "T", "termination_date": "2026-11-20", "termination_reason_code": "RESIGN"},
    )  # fmt: skip
    terminated = run_dag(DAG_ID, {"delta": True, "lookback_days": 1})
    assert terminated.summary["status"] == "Completed"
    assert terminated.summary["terminations"] == 1
    record = plansource_admin.subscriber(person)
    assert record["termination_date"] == "2026-11-20"
    assert record["termination_reason"] == "Voluntary Resignation"

    hcm_edit(
        sandbox, [person],
        {"employee_status_code": "A", "termination_date": None, "termination_reason_code": None,
         "hire_date": "2026-11-24"},
    )  # fmt: skip
    rehired = run_dag(DAG_ID, {"delta": True, "lookback_days": 1})
    assert rehired.summary["status"] == "Completed"
    assert rehired.summary["rehires"] == 1
    record = plansource_admin.subscriber(person)
    assert not record["termination_date"] and record["hire_date"] == "2026-11-24"


@pytest.mark.parametrize(
    ("conf", "param"),
    [
        ('{"lookback_days": 0}', "lookback_days"),
        ('{"lookback_days": 32}', "lookback_days"),
        ('{"include_employees": "E000010, E000011"}', "include_employees"),
        ('{"delta": "sometimes"}', "delta"),
    ],
)
def test_bad_params_are_refused_naming_the_param(conf: str, param: str) -> None:
    """Airflow's own trigger-time check (the same JSON schema the UI and REST API apply)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, "-c", conf],
        capture_output=True, text=True, env=os.environ.copy(), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"Invalid input for param {param}" in result.stdout + result.stderr
    assert "Run Summary" not in result.stdout  # refused before any data moved


def test_error_file_is_a_csv_a_clerk_can_open(sandbox: Any) -> None:
    outcome = run_dag(DAG_ID, {"delta": False, "include_employees": BAD["invalid_ssn"]})
    path = Path(outcome.summary["error_files"][0].removeprefix("file://"))
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["record_key", "field", "value", "rule", "reason", "stage"]
        [row] = list(reader)
    assert row["value"].startswith("***-**-") and len(row["value"]) == 11


def test_qualify_delta_sends_only_real_changes_since_last_delivery(
    sandbox: Any, plansource_admin: Any
) -> None:
    from benefits_hub.hooks.plansource import PlanSourceHook

    person = GOOD[2]
    baseline = run_dag(DAG_ID, {"delta": False})
    assert baseline.summary["errors"] == len(BAD)
    # Someone edits PlanSource directly; the HCM record is touched but no exported field changes.
    PlanSourceHook().update_subscribers([{"employee_number": person, "city": "Vendor Edit"}])
    hcm_edit(sandbox, [person], {})

    qualified = run_dag(DAG_ID, {"delta": True, "lookback_days": 1, "qualify_delta": True})
    assert qualified.summary["status"] == "Completed"
    assert qualified.summary["records_processed"] == 1
    assert qualified.summary["records_skipped"] == 1 and qualified.summary["records_updated"] == 0
    assert plansource_admin.subscriber(person)["city"] == "Vendor Edit"

    # Without Qualify Delta the export compares with PlanSource itself and restores the HCM's value.
    unqualified = run_dag(DAG_ID, {"delta": True, "lookback_days": 1})
    assert unqualified.summary["records_updated"] == 1
    assert plansource_admin.subscriber(person)["city"] != "Vendor Edit"

    # A delta's delivery is recorded as well (a small change file beside the full run's snapshot, not a
    # rewrite of every employee's fingerprint): the next Qualify Delta compares with it.
    PlanSourceHook().update_subscribers([{"employee_number": person, "city": "Vendor Edit"}])
    hcm_edit(sandbox, [person], {})
    again = run_dag(DAG_ID, {"delta": True, "lookback_days": 1, "qualify_delta": True})
    assert again.summary["records_skipped"] == 1 and again.summary["records_updated"] == 0
    from benefits_hub.staging import StagingArea

    change_files = StagingArea(DAG_ID, "-").state_root / "delivered_fingerprints.changes"
    assert len(list(change_files.iterdir())) == 3  # one per delta; the snapshot is the full run's


def test_fingerprints_an_older_hub_wrote_out_of_order_still_qualify_and_are_then_rewritten_in_order(
    sandbox: Any, plansource_admin: Any
) -> None:
    """Fingerprint files are written in employee-number order so a transform can merge them; files an
    older hub wrote in delivery order are still read (through a disk index) until a full run folds them."""
    import json

    from benefits_hub.hooks.plansource import PlanSourceHook
    from benefits_hub.staging import StagingArea

    person = GOOD[3]
    run_dag(DAG_ID, {"delta": False})
    state = Path(str(StagingArea(DAG_ID, "-").state_root.path))
    snapshot = state / "delivered_fingerprints.ordered.jsonl"
    lines = snapshot.read_text().splitlines()
    assert [json.loads(line)["n"] for line in lines] == sorted(json.loads(line)["n"] for line in lines)
    # As an older hub left it: the old name, in another order.
    (state / "delivered_fingerprints.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    snapshot.unlink()

    PlanSourceHook().update_subscribers([{"employee_number": person, "city": "Vendor Edit"}])
    hcm_edit(sandbox, [person], {})
    qualified = run_dag(DAG_ID, {"delta": True, "lookback_days": 1, "qualify_delta": True})
    assert qualified.summary["records_skipped"] == 1 and qualified.summary["records_updated"] == 0
    assert plansource_admin.subscriber(person)["city"] == "Vendor Edit"

    run_dag(DAG_ID, {"delta": False})  # folds the old snapshot and the delta's change file
    assert not (state / "delivered_fingerprints.jsonl").exists()
    assert not list((state / "delivered_fingerprints.changes").iterdir())
    folded = [json.loads(line)["n"] for line in snapshot.read_text().splitlines()]
    assert folded == sorted(folded) and len(folded) == len(lines)


def test_only_the_primary_ein_record_is_exported(sandbox: Any, plansource_admin: Any) -> None:
    import sqlite3

    outcome = run_dag(DAG_ID, {"delta": False})
    assert wait_for_census(plansource_admin)
    [census] = sorted((sandbox.sftp_root / "inbound" / "processed").glob("census_*.csv"))
    with census.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    numbers = [row["employee_number"] for row in rows]
    assert len(numbers) == len(set(numbers)) == outcome.summary["employees_processed"]
    multi = SPECIAL["multi_ein"][0]
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        (primary_pay_group,) = conn.execute(
            "SELECT pay_group_code FROM hcm_employment WHERE person_number = ? AND is_primary = 1", (multi,)
        ).fetchone()
        assert (
            conn.execute("SELECT COUNT(*) FROM hcm_employment WHERE person_number = ?", (multi,)).fetchone()[
                0
            ]
            > 1
        )
    from benefits_hub.xref import load_table

    [row] = [r for r in rows if r["employee_number"] == multi]
    assert row["org_payroll_id"] == load_table("pay_group").lookup(primary_pay_group)


def test_a_person_without_a_primary_employment_is_an_error_row_never_a_silent_skip(sandbox: Any) -> None:
    import sqlite3

    number = GOOD[2]
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        conn.execute("UPDATE hcm_employment SET is_primary = 0 WHERE person_number = ?", (number,))

    for conf in ({"delta": False}, {"delta": False, "include_employees": number}):
        outcome = run_dag(DAG_ID, conf)
        rows = [row for row in outcome.error_rows() if row["record_key"] == number]
        assert [row["rule"] for row in rows] == ["hcm:no_primary_employment"], conf
        assert "mark one of their employments primary" in rows[0]["reason"]
        assert outcome.summary["status"] == "Completed with Errors"


def test_formula_shaped_phone_email_and_username_never_reach_plansource_or_a_csv(
    sandbox: Any, plansource_admin: Any
) -> None:
    import csv
    import sqlite3

    from benefits_hub.values import looks_like_formula

    number = GOOD[3]
    before = plansource_admin.subscriber(number)
    planted = {"home_phone": "=cmd|' /C calc'!A0", "work_email": '=HYPERLINK("http://x")',
               "plansource_username": "@SUM(1+1)"}  # fmt: skip
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        sets = ", ".join(f"{column} = ?" for column in planted)
        conn.execute(f"UPDATE hcm_person SET {sets} WHERE person_number = ?", [*planted.values(), number])

    outcome = run_dag(DAG_ID, {"delta": False})

    rows = {row["field"]: row for row in outcome.error_rows() if row["record_key"] == number}
    assert set(planted) <= set(rows) and all(rows[f]["rule"] == "text:formula" for f in planted)
    assert plansource_admin.subscriber(number) == before  # nothing of theirs sent
    summary = outcome.summary
    outputs = summary.get("output_files") or [summary["output_file"]]  # the census among them
    assert any(path.endswith("/census.csv") for path in outputs)
    for path in [*summary["source_files"], *summary["error_files"], *outputs]:
        if not path or not path.endswith(".csv"):
            continue
        with open(path.removeprefix("file://"), newline="") as handle:
            for line in csv.reader(handle):
                assert not any(looks_like_formula(cell) for cell in line), (path, line)


def closed_port() -> int:
    import socket

    with socket.socket() as probe:  # bound, then closed: nothing listens there, connections are refused
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_vendor_refusing_connections_fails_the_run_within_the_bound_in_words(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import os
    import time as clock

    conn = json.loads(os.environ["AIRFLOW_CONN_PLANSOURCE_API"])
    conn["port"] = port = closed_port()
    monkeypatch.setenv("AIRFLOW_CONN_PLANSOURCE_API", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__VENDOR_UNREACHABLE_SECONDS", "4")

    started = clock.monotonic()
    outcome = run_dag(DAG_ID, {"delta": False})

    assert clock.monotonic() - started < 40  # the bound, then no Airflow retry on top
    assert outcome.task_states["extract"] == "failed"
    reason = outcome.summary["failure_reason"]
    assert "PlanSource could not be reached at http://127.0.0.1:" in reason and str(port) in reason, reason
    assert "'plansource_api'" in reason and "connection refused" in reason
    assert "vendor_unreachable_seconds" in reason
    assert "Max retries" not in reason and "HTTPConnectionPool" not in reason and "Traceback" not in reason


def plansource_rows(sandbox: Any) -> set[tuple[Any, ...]]:
    """Every subscriber PlanSource holds, as rows (a set: compared whole, before and after)."""
    with sqlite3.connect(sandbox.plansource_state_path) as conn:
        return set(conn.execute("SELECT * FROM subscriber").fetchall())


def plansource_writes(plansource_admin: Any) -> dict[str, Any]:
    """PlanSource's counts of what it was sent (its request counts aside: a dry run reads)."""
    return {k: v for k, v in plansource_admin.stats().items() if not k.startswith("requests")}


def test_dry_run_sends_nothing_moves_no_window_and_previews_exactly_what_the_next_run_sends(
    sandbox: Any, plansource_admin: Any
) -> None:
    baseline = run_dag(DAG_ID, {"delta": True, "lookback_days": 1})
    assert baseline.summary["status"] == "Completed"
    hcm_edit(sandbox, GOOD[:2], {"city": "Springfield Heights"})
    leaver = GOOD[5]
    hcm_edit(
        sandbox, [leaver],
        {"employee_status_code": "T", "termination_date": "2026-11-20", "termination_reason_code": "RESIGN"},
    )  # fmt: skip
    held, writes = plansource_rows(sandbox), plansource_writes(plansource_admin)

    dry = run_dag(DAG_ID, {"delta": True, "dry_run": True})

    summary = dry.summary
    assert dry.state == "success", summary
    assert summary["status"] == "Completed" and summary["dry_run"] is True
    assert summary["warnings"][0].startswith("Dry run: nothing was sent")
    assert summary["records_created"] == summary["records_updated"] == 0
    assert (summary["would_create"], summary["would_update"], summary["would_terminate"]) == (0, 3, 1)
    # PlanSource is untouched, whole.
    assert plansource_rows(sandbox) == held
    assert plansource_writes(plansource_admin) == writes  # reads only: lists, a token
    assert all(changes_for(sandbox, n) == [] for n in [*GOOD[:2], leaver])
    # The preview: one row per employee, the fields and values a real run sends.
    preview_path = Path(summary["output_file"].removeprefix("file://"))
    with preview_path.open(newline="") as handle:
        preview = {row["Employee"]: row for row in csv.DictReader(handle)}
    assert set(preview) == {*GOOD[:2], leaver}
    assert preview[GOOD[0]]["Action"] == "update"
    assert preview[GOOD[0]]["Fields and new values"] == "city: Springfield Heights"
    assert preview[leaver]["Action"] == "terminate"
    assert "termination_date: 2026-11-20" in preview[leaver]["Fields and new values"]

    # The window did not move: the next real run covers the same changes, and sends what was previewed.
    real = run_dag(DAG_ID, {"delta": True})
    assert real.summary["window_start"] == overlapped(baseline.summary["window_end"])
    assert [real.summary[f"records_{n}"] for n in ("created", "updated")] == [0, 3]
    assert real.summary["terminations"] == 1
    delivered_path = Path(real.summary["output_file"].removeprefix("file://"))
    with delivered_path.open(newline="") as handle:
        delivered = {row["employee_number"] for row in csv.DictReader(handle)}
    assert delivered == set(preview)
    assert plansource_admin.subscriber(GOOD[0])["city"] == "Springfield Heights"
