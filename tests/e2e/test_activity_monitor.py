"""The Activity Monitor through a real api-server with the plugin: runs of every status made by real DAG
runs (dag.test) against the sandbox, a DAG parsed then deleted while scheduled, then the page's JSON,
HTML, filters, sorting, CSV, run detail, file downloads, log links, the Transaction Assistant and access.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from benefits_hub.ui import urls
from tests.e2e.conftest import SSN_LOG, RunOutcome, _remember_ssns, run_dag, running_api_server
from tests.e2e.pii_scan import find_ssns
from tests.e2e.test_deductions_import import CURRENT_YEAR_INITIAL
from tests.e2e.test_demographic_export import GOOD
from tests.e2e.test_ijoin import PLANS

pytestmark = pytest.mark.e2e
EXPORT, IMPORT = "plansource_hcm_demographic_export", "plansource_deductions_import"
RESUBMIT, PLAN_SYNC = "plansource_deductions_resubmit", "ijoin_plan_sync"
RETIRED, RETIRED_BUNDLE = "hub_retired_census_feed", "activity-monitor-retired"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
RETIRED_DAG = """
from datetime import datetime

from airflow.sdk import DAG

from benefits_hub.operators.stages import integration_default_args, integration_stages

with DAG(
    dag_id="hub_retired_census_feed", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False,
    default_args=integration_default_args(), tags=["test"],
) as dag:
    validate, extract, transform, deliver, summary = integration_stages(
        "benefits_hub.demographics.export:DemographicExport"
    )
    validate >> extract >> transform >> deliver >> summary
"""


@dataclass
class Monitored:
    base: str
    runs: dict[str, RunOutcome]
    started: datetime
    hcm_db: Path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.base + path, timeout=30, **kwargs)

    def rows(self, **params: Any) -> list[dict[str, Any]]:
        response = self.get(urls.api_runs_path(), params=params)
        assert response.status_code == 200, response.text
        return response.json()["rows"]


def forget_hub_state() -> None:
    """As the ``clean_hub_state`` fixture does (function-scoped; these runs are made once per module)."""
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(VariableModel).filter(VariableModel.key.like("benefits_hub.%")).delete(
            synchronize_session=False
        )
    staging = Path(os.environ["AIRFLOW__BENEFITS_HUB__STAGING_URL"].removeprefix("file://"))
    shutil.rmtree(staging / "_state", ignore_errors=True)


def parse_then_delete_a_scheduled_dag(bundle: Path) -> None:
    """Every DAG parsed into the metadata DB (as the DAG processor would), one of them from a second
    bundle; then that DAG's file is deleted and Airflow marks it stale, as its DAG processor does."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    dag_file = bundle / f"{RETIRED}.py"
    dag_file.write_text(RETIRED_DAG)
    bundles = [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
        {"name": RETIRED_BUNDLE, "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(bundle)}},
    ]
    env = {**os.environ, "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles)}
    parsed = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "reserialize"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    dag_file.unlink()
    with create_session() as session:
        DagModel.deactivate_deleted_dags(RETIRED_BUNDLE, rel_filelocs=set(), session=session)


@pytest.fixture(scope="module")
def monitored(
    airflow_db: None, api_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Monitored]:
    from hub_sandbox import Sandbox

    started = datetime.now(UTC)
    forget_hub_state()
    parse_then_delete_a_scheduled_dag(tmp_path_factory.mktemp("retired-bundle"))
    box = Sandbox.start(tmp_path_factory.mktemp("monitor-sandbox"), employees=200, seed=42, token_ttl=300)
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in box.connection_env().items():
                env.setenv(name, value)
            _remember_ssns(box.hcm_db_path, box.plansource_state_path, box.recordkeeper_db_path)
            runs = {
                "completed": run_dag(EXPORT, {"delta": False, "include_employees": GOOD[0]}),
                "with_errors": run_dag(IMPORT, {"delta": True, **CURRENT_YEAR_INITIAL}),
                "refused": run_dag(RESUBMIT, {"integration_reference_id": "no-such-run"}),
                "successful": run_dag(PLAN_SYNC, {"plan_ids": "P0001"}),
                "with_warnings": run_dag(PLAN_SYNC, {"plan_ids": PLANS["lineup_changed"]}),
            }
        yield Monitored(base=api_server, runs=runs, started=started, hcm_db=box.hcm_db_path)
    finally:
        box.stop()


DAG_OF = {
    "completed": EXPORT, "with_errors": IMPORT, "refused": RESUBMIT,
    "successful": PLAN_SYNC, "with_warnings": PLAN_SYNC,
}  # fmt: skip
EXPECTED = {
    "completed": "Completed",
    "with_errors": "Completed with Errors",
    "refused": "Failed",
    "successful": "Successful",
    "with_warnings": "Successful with warnings",
}


def test_every_run_in_the_vendors_statuses_with_its_summary_counts(monitored: Monitored) -> None:
    rows = monitored.rows()
    by_reference = {r["reference_id"]: r for r in rows if r["kind"] == "run"}
    for label, status in EXPECTED.items():
        outcome = monitored.runs[label]
        assert outcome.summary["status"] == status  # what the run itself said
        row = by_reference[outcome.run_id]
        assert row["status"] == status, label
        assert row["run_name"] == outcome.summary["integration_run_name"]
        assert row["integration"] == outcome.summary["integration_name"]
        assert row["start"] and row["end"] and row["duration_seconds"] is not None
        assert row["triggered_by"] == outcome.summary["user"]
        for field in ("records_processed", "records_created", "errors"):
            assert row[field] == outcome.summary[field], (label, field)
        assert row["people_processed"] == outcome.summary["employees_processed"]
    assert by_reference[monitored.runs["completed"].run_id]["people_processed"] == 1
    assert by_reference[monitored.runs["with_errors"].run_id]["errors"] > 0
    # Helper DAGs are not integrations: the draft review the line-up change requested is not listed.
    assert {r["dag_id"] for r in rows} >= {EXPORT, IMPORT, RESUBMIT, PLAN_SYNC}
    # The new-plan watch has no summary: not an integration. The draft review is listed (its own summary).
    assert "ijoin_new_plan_watch" not in {r["dag_id"] for r in rows}


def test_scheduled_integrations_and_a_deleted_one(monitored: Monitored) -> None:
    schedules = {r["dag_id"]: r for r in monitored.rows() if r["kind"] == "schedule"}
    for dag_id in (EXPORT, IMPORT, PLAN_SYNC, "ijoin_participant_sync", "ijoin_enrollment_writeback"):
        assert schedules[dag_id]["status"] == "Scheduled", dag_id
        assert schedules[dag_id]["start"], dag_id  # the next run time
    assert schedules[EXPORT]["schedule"] == "0 * * * *"
    assert RESUBMIT not in schedules and "plansource_benefits_set" not in schedules  # manual only
    retired = schedules[RETIRED]
    assert retired["status"] == "Scheduled but Deleted" and retired["deleted"] and retired["start"] is None
    html = monitored.get(urls.list_path()).text
    assert f'<tr class="row-schedule row-deleted" data-kind="schedule" data-dag-id="{RETIRED}"' in html
    assert '<span class="badge status-scheduled-but-deleted">Scheduled but Deleted</span>' in html


def test_the_html_list_shows_every_run_with_its_badge(monitored: Monitored) -> None:
    html = monitored.get(urls.list_path()).text
    for label, status in EXPECTED.items():
        link = f'href="{urls.run_detail_path(DAG_OF[label], monitored.runs[label].run_id)}"'
        assert link in html, label
        badge = f'<span class="badge status-{status.lower().replace(" ", "-")}">{status}</span>'
        assert badge in html, label


def test_filters_and_sorting(monitored: Monitored) -> None:
    mine = {outcome.run_id for outcome in monitored.runs.values()}
    failed = monitored.rows(status="Failed")
    assert {r["status"] for r in failed} == {"Failed"}
    assert monitored.runs["refused"].run_id in {r["reference_id"] for r in failed}
    two = monitored.rows(status=["Successful", "Successful with warnings"], integration=PLAN_SYNC)
    assert {r["reference_id"] for r in two} & mine == {
        monitored.runs["successful"].run_id, monitored.runs["with_warnings"].run_id
    }  # fmt: skip
    assert {r["dag_id"] for r in two} == {PLAN_SYNC}
    only_schedule = monitored.rows(integration=EXPORT, status="Scheduled")
    assert [(r["kind"], r["dag_id"]) for r in only_schedule] == [("schedule", EXPORT)]
    # A date range before these runs holds none of them; one around today holds them all.
    yesterday = (monitored.started - timedelta(days=1)).date().isoformat()
    assert not {r["reference_id"] for r in monitored.rows(date_to=yesterday)} & mine
    today = datetime.now(UTC).date().isoformat()
    assert {r["reference_id"] for r in monitored.rows(date_from=yesterday, date_to=today)} >= mine
    # Sorting: by start, oldest first; by errors, most first (rows without a value last).
    oldest_first = [r for r in monitored.rows(sort="start", order="asc") if r["reference_id"] in mine]
    assert [r["reference_id"] for r in oldest_first] == [o.run_id for o in monitored.runs.values()]
    by_errors = [r["errors"] for r in monitored.rows(sort="errors", order="desc") if r["errors"] is not None]
    assert by_errors == sorted(by_errors, reverse=True) and by_errors[0] > 0
    assert monitored.get(urls.api_runs_path(), params={"status": "Done"}).status_code == 400
    assert monitored.get(urls.api_runs_path(), params={"date_from": "25/11/2026"}).status_code == 400


def test_csv_export_of_the_filtered_rows(monitored: Monitored) -> None:
    response = monitored.get(urls.csv_path(), params={"status": "Completed with Errors"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows and {r["Status"] for r in rows} == {"Completed with Errors"}
    outcome = monitored.runs["with_errors"]
    [mine] = [r for r in rows if r["Reference ID"] == outcome.run_id]
    assert mine["Integration"] == "PlanSource Deductions Import"
    assert mine["Errors"] == str(outcome.summary["errors"])
    assert mine["Records processed"] == str(outcome.summary["records_processed"])


def test_error_counter_since_the_last_look(monitored: Monitored) -> None:
    browser = requests.Session()
    before = (monitored.started - timedelta(seconds=1)).isoformat()
    browser.cookies.set("activity_monitor_last_viewed", before, path=urls.PREFIX)
    body = browser.get(monitored.base + urls.api_runs_path(), timeout=30).json()["errors_since_last_view"]
    # This module's runs that ended with errors: the import (errors) and the refused resubmit.
    assert body["runs"] >= 2 and body["records"] >= monitored.runs["with_errors"].summary["errors"]
    assert {"PlanSource Deductions Import", monitored.runs["refused"].summary["integration_name"]} <= set(
        body["integrations"]
    )
    page = browser.get(monitored.base + urls.list_path(), timeout=30)
    assert 'id="error-counter" class="counter has-errors"' in page.text
    assert "activity_monitor_last_viewed" in page.headers["set-cookie"]
    # Looking again: nothing new since this look.
    again = browser.get(monitored.base + urls.list_path(), timeout=30).text
    assert 'id="error-counter" class="counter no-errors" data-count="0"' in again


def test_run_detail_summary_files_and_log_links(monitored: Monitored) -> None:
    outcome = monitored.runs["with_errors"]
    detail = monitored.get(urls.api_run_path(IMPORT, outcome.run_id)).json()
    assert detail["summary"] == outcome.summary  # the whole Run Summary
    assert detail["row"]["status"] == "Completed with Errors"
    assert detail["warnings"] and detail["resubmit"]["reference_id"] == outcome.run_id
    assert {f["kind"] for f in detail["files"]} == {"source", "output", "errors"}
    # The error file downloads, as the run wrote it (already masked).
    [error_file] = [f for f in detail["files"] if f["kind"] == "errors"]
    download = monitored.get(error_file["download_path"])
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    keys = {row["record_key"] for row in csv.DictReader(io.StringIO(download.text))}
    assert keys == {row["record_key"] for row in outcome.error_rows()}
    # Each task's log link opens that task instance in the Airflow UI; the task instance is real.
    tasks = {t["task_id"]: t for t in detail["tasks"]}
    assert set(tasks) >= {"validate", "extract", "transform", "deliver", "summary"}
    for task_id, task in tasks.items():
        assert task["log_path"] == f"/dags/{IMPORT}/runs/{quote(outcome.run_id, safe='')}/tasks/{task_id}"
        assert monitored.get(task["log_path"]).status_code == 200
        api = f"/api/v2/dags/{IMPORT}/dagRuns/{quote(outcome.run_id, safe='')}/taskInstances/{task_id}"
        assert monitored.get(api).json()["state"] == outcome.task_states[task_id]
    html = monitored.get(urls.run_detail_path(IMPORT, outcome.run_id)).text
    assert outcome.summary["integration_run_name"] in html and "Open the log in Airflow" in html
    assert f'href="{error_file["download_path"]}"' in html
    assert 'id="transaction-assistant"' in html
    # A plan sync has no Transaction Assistant; a run that does not exist is a 404.
    sync = monitored.runs["successful"]
    assert (
        'id="transaction-assistant"' not in monitored.get(urls.run_detail_path(PLAN_SYNC, sync.run_id)).text
    )
    assert monitored.get(urls.api_run_path(IMPORT, "no-such-run")).status_code == 404
    assert monitored.get(f"{urls.run_detail_path(IMPORT, outcome.run_id)}/files/errors/9").status_code == 404


def test_downloaded_source_files_never_carry_an_ssn(monitored: Monitored) -> None:
    outcome = monitored.runs["completed"]
    with sqlite3.connect(monitored.hcm_db) as conn:
        [(ssn,)] = conn.execute("SELECT ssn FROM hcm_person WHERE person_number = ?", (GOOD[0],))
    detail = monitored.get(urls.api_run_path(EXPORT, outcome.run_id)).json()
    [source] = [f for f in detail["files"] if f["name"] == "hcm_employees.jsonl"]
    staged = Path(outcome.summary["source_files"][source["index"]].removeprefix("file://")).read_text()
    assert find_ssns([("staged", staged)], [ssn])  # the staged extract holds the real SSN ...
    downloaded = monitored.get(source["download_path"]).text
    assert GOOD[0] in downloaded and "***-**-" in downloaded
    assert find_ssns([("download", downloaded)], [ssn]) == []  # ... the download never does
    seeded = SSN_LOG.read_text().split()
    for file in detail["files"]:
        answer = monitored.get(file["download_path"])
        assert find_ssns([(file["name"], answer.text)], seeded) == []
        # Personal data is never kept by a browser or a proxy, nor sniffed into another type.
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_forbid_inline_script(monitored: Monitored) -> None:
    for path in (urls.list_path(), urls.run_detail_path(EXPORT, monitored.runs["completed"].run_id)):
        answer = monitored.get(path)
        policy = answer.headers["Content-Security-Policy"]
        assert (
            "script-src 'self'" in policy
            and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        )
        assert "<script>" not in answer.text  # nothing inline that the policy would have to allow
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_transaction_assistant_starts_a_resubmit_run(monitored: Monitored) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    outcome = monitored.runs["with_errors"]
    record_key = sorted(row["record_key"] for row in outcome.error_rows())[0]
    corrections = {record_key: {"subscriber_premium": "12.50"}}
    response = requests.post(
        monitored.base + urls.resubmit_path(IMPORT, outcome.run_id),
        json={"corrections": corrections},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    started = response.json()
    assert started["dag_id"] == RESUBMIT
    try:
        with create_session() as session:
            run = session.query(DagRun).filter_by(dag_id=RESUBMIT, run_id=started["run_id"]).one()
            assert run.conf == {"integration_reference_id": outcome.run_id, "corrections": corrections}
            assert run.state == "queued" and run.triggering_user_name
        # Airflow queued it: the page shows it In-Progress; its detail says why it has no summary yet.
        in_progress = monitored.rows(status="In-Progress", integration=RESUBMIT)
        assert started["run_id"] in {r["reference_id"] for r in in_progress}
        assert "it has not finished yet" in monitored.get(started["detail_path"]).text
    finally:
        # No scheduler runs here: leave no queued run behind in the session's shared metadata DB.
        with create_session() as session:
            session.query(DagRun).filter_by(dag_id=RESUBMIT, run_id=started["run_id"]).delete()
    # A run without deductions errors offers nothing to resubmit.
    refused = requests.post(
        monitored.base + urls.resubmit_path(EXPORT, monitored.runs["completed"].run_id), json={}, timeout=30
    )
    assert refused.status_code == 409


def test_anonymous_callers_are_refused_and_viewers_cannot_resubmit(
    monitored: Monitored, tmp_path: Path
) -> None:
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"hr_lead": "hr-lead-password"}))
    secured_env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "hr_lead:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    outcome = monitored.runs["with_errors"]
    with running_api_server(secured_env, "api-server-secured.log") as base:
        assert requests.get(base + urls.api_runs_path(), timeout=30).status_code == 401
        assert requests.get(base + urls.csv_path(), timeout=30).status_code == 401
        page = requests.get(base + urls.list_path(), timeout=30, allow_redirects=False)
        assert page.status_code == 307 and "/auth/login" in page.headers["location"]
        token = requests.post(
            f"{base}/auth/token", json={"username": "hr_lead", "password": "hr-lead-password"}, timeout=30
        ).json()["access_token"]
        as_viewer = {"Authorization": f"Bearer {token}"}
        rows = requests.get(base + urls.api_runs_path(), headers=as_viewer, timeout=30).json()["rows"]
        assert outcome.run_id in {r["reference_id"] for r in rows}
        # The browser's session cookie (what the Airflow UI sets at login) opens the page.
        html = requests.get(base + urls.list_path(), cookies={"_token": token}, timeout=30)
        assert html.status_code == 200 and outcome.run_id in html.text
        resubmit = requests.post(
            base + urls.resubmit_path(IMPORT, outcome.run_id), json={}, headers=as_viewer, timeout=30
        )
        assert resubmit.status_code == 403


def test_an_error_count_opens_the_runs_error_records_filterable_and_masked(monitored: Monitored) -> None:
    import re

    outcome = monitored.runs["with_errors"]
    listing = monitored.get(urls.list_path()).text
    errors_path = urls.error_records_path(IMPORT, outcome.run_id)
    assert f'class="error-count" href="{errors_path.replace("+", "%2B")}"' in listing.replace(
        "&amp;", "&"
    ) or ('class="error-count"' in listing)
    page = monitored.get(errors_path).text
    shown = re.findall(r"<tbody>(.*?)</tbody>", page, re.S)[0].count("<tr>")
    assert shown == len(outcome.error_rows()) >= outcome.summary["errors"]  # every row of the error file
    only_dates = monitored.get(errors_path + "?field=termination_date").text
    assert re.findall(r"<tbody>(.*?)</tbody>", only_dates, re.S)[0].count("<tr>") == 1
    seeded = SSN_LOG.read_text().split()
    assert find_ssns([("errors page", page)], seeded) == []
