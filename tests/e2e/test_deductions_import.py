"""The Deductions Import, its Transaction Assistant and the benefits set, run for real (dag.test)
against the sandbox's PlanSource API and HCM database."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from hub_sandbox.coverages import special_coverages
from tests.e2e.conftest import run_dag

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
IMPORT = "plansource_deductions_import"
RESUBMIT = "plansource_deductions_resubmit"
SET = "plansource_benefits_set"
CURRENT_YEAR_INITIAL = {"deduction_start_date": "2025-10-01", "plan_year_start_date": "2025-12-31"}
PRIOR_YEAR_INITIAL = {"deduction_start_date": "2024-10-01", "plan_year_start_date": "2024-12-31"}
FAILING = {category: ids[0] for category, ids in special_coverages(200).items()}


def deductions(sandbox: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    with sqlite3.connect(sandbox.hcm_db_path) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM hcm_payroll_deduction").fetchall()
    return {(r["person_number"], r["deduction_code"], r["effective_date"]): dict(r) for r in rows}


def plansource_coverages(sandbox: Any, where: str) -> list[dict[str, Any]]:
    with sqlite3.connect(sandbox.plansource_state_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM payroll_coverage WHERE {where}")]


def change_coverages(sandbox: Any, changes: list[dict[str, Any]]) -> None:
    response = requests.post(
        f"{sandbox.plansource_url}/sandbox/coverages", json={"coverages": changes}, timeout=10
    )
    response.raise_for_status()


def test_initial_plan_year_import_loads_good_records_and_explains_bad_ones(sandbox: Any) -> None:
    outcome = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})

    summary = outcome.summary
    assert outcome.state == "failed" and summary["status"] == "Completed with Errors"
    assert outcome.task_states["deliver"] == "success"
    current = plansource_coverages(sandbox, "plan_year = 2026")
    real = [c for c in current if not c["test_employee"]]
    good = [c for c in real if c["id"] not in FAILING.values()]
    assert summary["records_processed"] == len(real)
    assert summary["errors"] == len(FAILING)
    assert summary["records_created"] == len(good)
    loaded = deductions(sandbox)
    assert len(loaded) == len(good)
    assert {row["plansource_coverage_id"] for row in loaded.values()} == {c["id"] for c in good}
    # Test employees are left out, and counted.
    test_people = {c["subscriber_code"] for c in current if c["test_employee"]}
    assert test_people and summary["test_employees_skipped"] == len(test_people)
    assert not test_people & {key[0] for key in loaded}
    assert summary["employees_processed"] == len({c["subscriber_code"] for c in good})
    # The error file: each failing record once, with the rule and a reason, and no SSN.
    rows = {row["record_key"].split("#")[1]: row for row in outcome.error_rows()}
    assert set(rows) == set(FAILING.values())
    assert rows[FAILING["unknown_employee"]]["rule"] == "hcm:unknown_person"
    assert rows[FAILING["unmapped_code"]]["rule"] == "xref:deduction_code"
    assert rows[FAILING["negative_amount"]]["rule"] == "amount:negative"
    assert rows[FAILING["end_before_start"]]["rule"] == "dates:end_before_start"
    # The three files are in the summary.
    assert summary["source_files"] and summary["output_file"] and summary["error_files"]
    assert any("Demographic Export" in w for w in summary["warnings"])


def test_a_narrowed_run_counts_only_the_test_employees_it_was_asked_about(sandbox: Any) -> None:
    current = plansource_coverages(sandbox, "plan_year = 2026")
    real = next(
        c["subscriber_code"] for c in current if not c["test_employee"] and c["id"] not in FAILING.values()
    )
    assert any(c["test_employee"] for c in current)  # PlanSource has test employees; none is asked about

    outcome = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL, "include_employees": real})

    assert outcome.summary["test_employees_skipped"] == 0, outcome.summary
    assert outcome.summary["employees_processed"] == 1


def test_calendar_dates_and_amounts_land_exactly(sandbox: Any) -> None:
    run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    loaded = deductions(sandbox)
    by_id = {row["plansource_coverage_id"]: row for row in loaded.values()}
    for coverage in plansource_coverages(sandbox, "plan_year = 2026 AND test_employee = 0")[:50]:
        if coverage["id"] in FAILING.values():
            continue
        row = by_id[coverage["id"]]
        # '2026-01-01T00:00:00.000Z' is the calendar date 2026-01-01 whatever the time zone.
        assert row["effective_date"] == coverage["change_effective_date"][:10].replace("/", "-")
        assert f"{float(row['employee_amount']):.2f}" == coverage["subscriber_premium"]
        assert f"{float(row['employer_amount']):.2f}" == coverage["org_premium"]
        # The schema's TIMESTAMP text, as source_updated_at: '2026-12-06 05:20:06', no 'T'.
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", row["loaded_at"]), row["loaded_at"]


def test_nightly_delta_picks_up_only_changed_coverages_and_a_rerun_changes_nothing(sandbox: Any) -> None:
    run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    before = deductions(sandbox)
    good = [
        c for c in plansource_coverages(sandbox, "plan_year = 2026 AND test_employee = 0 AND current = 1")
    ]
    good = [c for c in good if c["id"] not in FAILING.values() and not c["termination_date"]]
    repriced, ended = good[0], good[1]
    change_coverages(
        sandbox,
        [
            {"id": repriced["id"], "subscriber_premium": "321.00"},
            {"id": ended["id"], "termination_date": "2026-11-30", "termination_reason": "Voluntary"},
        ],
    )

    nightly = run_dag(IMPORT, {"delta": True, "lookback_days": 1})
    summary = nightly.summary
    assert nightly.state == "success" and summary["status"] == "Completed", summary
    assert summary["records_processed"] == 2
    assert summary["records_updated"] == 2 and summary["records_created"] == 0
    after = deductions(sandbox)
    assert len(after) == len(before)  # an ended coverage is end-dated, never deleted
    by_id = {row["plansource_coverage_id"]: row for row in after.values()}
    assert f"{float(by_id[repriced['id']]['employee_amount']):.2f}" == "321.00"
    assert by_id[ended["id"]]["end_date"] == "2026-11-30"
    untouched = {
        k: v for k, v in after.items() if v["plansource_coverage_id"] not in (repriced["id"], ended["id"])
    }
    assert untouched == {k: v for k, v in before.items() if k in untouched}

    rerun = run_dag(IMPORT, {"delta": True, "lookback_days": 1})
    assert rerun.summary["records_created"] == 0 and rerun.summary["records_updated"] == 0
    assert rerun.summary["records_skipped"] == 2
    assert deductions(sandbox) == after


def test_a_change_stamped_before_the_last_run_ended_but_seen_after_it_is_imported_by_the_next_run(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PlanSource stamps a change when it is made, not when its API can show it (a late commit, or its
    clock behind ours). Such a change carries a stamp inside the run that missed it. The next window
    starts an overlap before the last run's end (here two days, so the stamp can sit on the day before
    the watermark's, which a window of whole days from the watermark's date would never read); the
    upsert's sameness check keeps the overlap from rewriting anything."""
    from datetime import datetime, timedelta

    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__WINDOW_OVERLAP_MINUTES", str(2 * 24 * 60))
    run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    first = run_dag(IMPORT, {"delta": True})  # nothing new; Completed: it sets the watermark
    assert first.summary["status"] == "Completed", first.summary
    ended = datetime.fromisoformat(first.summary["window_end"])
    target = next(
        c
        for c in plansource_coverages(sandbox, "plan_year = 2026 AND test_employee = 0 AND current = 1")
        if c["id"] not in FAILING.values() and not c["termination_date"]
    )
    late_stamp = datetime.combine(ended.date(), datetime.min.time()) - timedelta(minutes=1)
    with sqlite3.connect(sandbox.plansource_state_path) as conn:  # the late change, as PlanSource holds it
        conn.execute(
            "UPDATE payroll_coverage SET subscriber_premium = '55.55', updated_at = ? WHERE id = ?",
            (late_stamp.strftime("%Y-%m-%d %H:%M:%S"), target["id"]),
        )

    after = run_dag(IMPORT, {"delta": True})

    assert after.summary["status"] == "Completed", after.summary
    assert after.summary["records_updated"] == 1
    by_id = {row["plansource_coverage_id"]: row for row in deductions(sandbox).values()}
    assert f"{float(by_id[target['id']]['employee_amount']):.2f}" == "55.55"
    # With nothing changed since, the overlapping window reads the change again and writes nothing.
    again = run_dag(IMPORT, {"delta": True})
    assert again.summary["records_created"] == again.summary["records_updated"] == 0
    assert again.summary["records_skipped"] >= 1


def test_resubmit_fixes_corrected_records_and_keeps_the_rest_in_a_new_error_file(sandbox: Any) -> None:
    original = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    keys = {row["record_key"].split("#")[1]: row["record_key"] for row in original.error_rows()}
    corrections = {
        keys[FAILING["negative_amount"]]: {
            "subscriber_premium": "12.50",
            "subscriber_pretax_premium": "12.50",
        },
        keys[FAILING["unmapped_code"]]: {"plan_payroll_mapping_code": "MED-PPO"},
    }

    resubmit = run_dag(RESUBMIT, {"integration_reference_id": original.run_id, "corrections": corrections})

    summary = resubmit.summary
    assert summary["resubmission_of"] == original.run_id
    assert summary["status"] == "Completed with Errors"
    assert summary["records_processed"] == len(FAILING)
    assert summary["records_created"] == 2
    still_wrong = {row["record_key"].split("#")[1] for row in resubmit.error_rows()}
    assert still_wrong == {FAILING["unknown_employee"], FAILING["end_before_start"]}
    assert resubmit.summary["error_files"] != original.summary["error_files"]
    by_id = {row["plansource_coverage_id"]: row for row in deductions(sandbox).values()}
    assert f"{float(by_id[FAILING['negative_amount']]['employee_amount']):.2f}" == "12.50"
    assert by_id[FAILING["unmapped_code"]]["deduction_code"] == "MEDPPO"

    # Corrections accumulate: the resubmission's own reference id offers only what is still wrong.
    # A record already fixed is refused by name; the last two are corrected and dismissed: Completed.
    fixed_again = run_dag(RESUBMIT, {"integration_reference_id": resubmit.run_id, "corrections": corrections})
    assert fixed_again.summary["status"] == "Failed"
    assert f"was already corrected by run '{resubmit.run_id}'" in fixed_again.summary["failure_reason"]
    bad_value = run_dag(
        RESUBMIT,
        {
            "integration_reference_id": resubmit.run_id,
            "corrections": {keys[FAILING["end_before_start"]]: {"termination_date": "2026-02-30"}},
        },
    )
    assert (
        bad_value.summary["status"] == "Failed"
        and "not a real calendar date" in bad_value.summary["failure_reason"]
    )
    before_last = deductions(sandbox)
    last = run_dag(
        RESUBMIT,
        {
            "integration_reference_id": resubmit.run_id,
            "corrections": {keys[FAILING["end_before_start"]]: {"termination_date": ""}},
            "dismissals": {keys[FAILING["unknown_employee"]]: "employee left, not needed"},
        },
    )
    assert last.state == "success" and last.summary["status"] == "Completed", last.summary
    assert last.summary["resubmission_root"] == original.run_id
    assert last.summary["records_processed"] == 1 and last.summary["records_created"] == 1
    assert last.summary["records_dismissed"] == 1 and last.summary["errors"] == 0
    after_last = deductions(sandbox)
    assert len(after_last) == len(before_last) + 1
    ids = [row["plansource_coverage_id"] for row in after_last.values()]
    assert len(ids) == len(set(ids))  # each corrected record is in the HCM exactly once
    from benefits_hub.deductions.corrections import read_ledger
    from benefits_hub.staging import StagingArea

    ledger = read_ledger(StagingArea(IMPORT, original.run_id))
    assert len(ledger.fixed) == 3 and list(ledger.dismissed) == [keys[FAILING["unknown_employee"]]]
    nothing_left = run_dag(RESUBMIT, {"integration_reference_id": original.run_id})
    assert nothing_left.summary["status"] == "Failed"
    assert "nothing left to resubmit" in nothing_left.summary["failure_reason"]
    assert deductions(sandbox) == after_last


def test_resubmit_refuses_an_unknown_run_or_record(sandbox: Any) -> None:
    unknown = run_dag(RESUBMIT, {"integration_reference_id": "manual__1999-01-01T00:00:00+00:00"})
    assert unknown.summary["status"] == "Failed"
    assert "integration_reference_id" in unknown.summary["failure_reason"]
    original = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    wrong = run_dag(RESUBMIT, {"integration_reference_id": original.run_id, "corrections": {"E1#NOPE": {}}})
    assert wrong.summary["status"] == "Failed" and "E1#NOPE" in wrong.summary["failure_reason"]


def test_nightly_schedule_refuses_before_an_initial_import(sandbox: Any) -> None:
    outcome = run_dag(IMPORT, {"delta": True, "lookback_days": 1})
    assert outcome.state == "failed"
    assert outcome.task_states["validate"] == "failed" and outcome.task_states["extract"] == "upstream_failed"
    assert outcome.summary["status"] == "Failed"
    assert "initial import" in outcome.summary["failure_reason"]
    assert deductions(sandbox) == {}


def test_prior_and_current_plan_years_are_not_imported_the_same_day(sandbox: Any) -> None:
    prior = run_dag(IMPORT, {"delta": True, **PRIOR_YEAR_INITIAL})
    assert prior.task_states["deliver"] == "success"
    loaded_after_prior = deductions(sandbox)
    current = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    assert current.summary["status"] == "Failed"
    assert "different days" in current.summary["failure_reason"]
    assert deductions(sandbox) == loaded_after_prior


def test_prior_year_goes_first(sandbox: Any) -> None:
    run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    prior = run_dag(IMPORT, {"delta": True, **PRIOR_YEAR_INITIAL})
    assert prior.summary["status"] == "Failed"
    assert "prior" in prior.summary["failure_reason"]


def test_set_aborts_the_import_after_a_failed_export(sandbox: Any) -> None:
    outcome = run_dag(SET, {"export": {"delta": False}, "import": {"delta": True, **CURRENT_YEAR_INITIAL}})
    assert outcome.state == "failed"
    assert outcome.summary["stopped_by"] == "export"
    statuses = {m["member"]: m["status"] for m in outcome.summary["members"]}
    assert statuses == {"export": "Completed with Errors", "import": "Not run"}
    assert outcome.task_states["import.deliver"] in ("upstream_failed", "skipped")
    assert deductions(sandbox) == {}


def test_set_runs_the_import_after_a_clean_export(sandbox: Any) -> None:
    outcome = run_dag(
        SET,
        {"export": {"delta": True, "lookback_days": 1}, "import": {"delta": True, **CURRENT_YEAR_INITIAL}},
    )
    statuses = {m["member"]: m["status"] for m in outcome.summary["members"]}
    assert statuses["export"] == "Completed"
    assert statuses["import"] == "Completed with Errors"  # the seeded failing coverages
    assert outcome.summary["stopped_by"] == "import"
    assert deductions(sandbox)


@contextmanager
def running(dag_id: str) -> Iterator[str]:
    """A run of ``dag_id`` in Airflow's metadata, running (as if a worker were on it) until the block ends."""
    from datetime import UTC, datetime

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    run_id = f"manual__holding_{dag_id}"
    with create_session() as session:
        now = datetime.now(UTC)
        holding = DagRun(
            dag_id=dag_id, run_id=run_id, run_type=DagRunType.MANUAL, run_after=now, start_date=now
        )
        holding.state = DagRunState.RUNNING
        session.add(holding)
    try:
        yield run_id
    finally:
        with create_session() as session:
            session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).delete()


def test_a_standalone_run_and_a_set_of_the_same_integration_never_overlap(sandbox: Any) -> None:
    with running(SET):
        standalone = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    assert (
        standalone.task_states["validate"] == "failed"
        and standalone.task_states["extract"] == "upstream_failed"
    )
    reason = standalone.summary["failure_reason"]
    assert reason.startswith("A run of the integration set plansource_benefits_set is running"), reason
    assert (
        "This run did nothing" in reason
        and "/activity-monitor/?integration=plansource_benefits_set" in reason
    )

    with running(IMPORT):
        member = run_dag(SET, {"export": {"delta": True, "lookback_days": 1}, "import": {"delta": True}})
    statuses = {m["member"]: m["status"] for m in member.summary["members"]}
    assert (
        statuses == {"export": "Completed", "import": "Failed"} and member.summary["stopped_by"] == "import"
    )
    assert member.task_states["import.validate"] == "failed"
    assert deductions(sandbox) == {}  # neither run wrote a deduction


@pytest.mark.parametrize(
    ("conf", "param"),
    [
        ('{"plan_year_start_date": "2025/12/31"}', "plan_year_start_date"),
        ('{"deduction_start_date": "Oct 1 2025"}', "deduction_start_date"),
        ('{"lookback_days": 40}', "lookback_days"),
    ],
)
def test_bad_params_are_refused_at_trigger_time(conf: str, param: str) -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", IMPORT, "-c", conf],
        capture_output=True, text=True, env=os.environ.copy(), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"Invalid input for param {param}" in result.stdout + result.stderr


def test_impossible_date_is_refused_before_any_data_moves(sandbox: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    # At trigger time, Airflow's JSON schema (format "date") refuses it...
    with pytest.raises(ParamValidationError, match="deduction_start_date"):
        run_dag(IMPORT, {"deduction_start_date": "2025-02-30", "plan_year_start_date": "2025-12-31"})
    # ...and inside a set, where the member's params are one JSON object, the validate stage does.
    outcome = run_dag(
        SET,
        {
            "export": {"delta": True, "lookback_days": 1},
            "import": {"deduction_start_date": "2025-02-30", "plan_year_start_date": "2025-12-31"},
        },
    )
    assert outcome.summary["stopped_by"] == "import"
    [member] = [m for m in outcome.summary["members"] if m["member"] == "import"]
    assert member["failure_reason"] == (
        "Param 'deduction_start_date': is not a real calendar date (check the month and the day)"
    )
    assert outcome.task_states["import.validate"] == "failed"
    assert outcome.task_states["import.extract"] == "upstream_failed"
    assert deductions(sandbox) == {}


def preview_rows(outcome: Any) -> list[dict[str, str]]:
    import csv
    from pathlib import Path

    with Path(outcome.summary["output_file"].removeprefix("file://")).open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_dry_runs_write_nothing_move_nothing_and_preview_what_the_real_runs_then_do(sandbox: Any) -> None:
    dry = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL, "dry_run": True})
    summary = dry.summary
    assert summary["dry_run"] is True and summary["status"] == "Completed with Errors"  # errors still said
    assert deductions(sandbox) == {}  # the HCM is untouched
    assert summary["records_created"] == 0
    # No state moved: the nightly schedule still refuses, as before any initial import.
    refused = run_dag(IMPORT, {"delta": True})
    assert refused.summary["status"] == "Failed"
    assert "initial import" in refused.summary["failure_reason"]

    real = run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL})
    assert real.summary["records_created"] == summary["would_create"] > 0
    previewed = {(r["Employee"], r["Deduction code"], r["Start date"]) for r in preview_rows(dry)}
    assert previewed == set(deductions(sandbox))
    assert {r["Action"] for r in preview_rows(dry)} == {"create"}

    good = plansource_coverages(sandbox, "plan_year = 2026 AND test_employee = 0 AND current = 1")
    repriced = next(c for c in good if c["id"] not in FAILING.values() and not c["termination_date"])
    change_coverages(sandbox, [{"id": repriced["id"], "subscriber_premium": "432.10"}])
    loaded = deductions(sandbox)
    nightly_dry = run_dag(IMPORT, {"delta": True, "lookback_days": 1, "dry_run": True})
    assert nightly_dry.summary["would_update"] == 1 and nightly_dry.summary["would_create"] == 0
    [row] = preview_rows(nightly_dry)
    assert (row["Action"], row["Employee"], row["Employee premium"]) == (
        "update",
        repriced["subscriber_code"],
        "432.10",
    )
    assert deductions(sandbox) == loaded
    nightly = run_dag(IMPORT, {"delta": True, "lookback_days": 1})
    assert nightly.summary["records_updated"] == 1
