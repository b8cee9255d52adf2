"""The DAGs, unchanged, on the production topology: a CeleryExecutor cluster (scheduler, dag-processor,
api-server, two Celery workers) with PostgreSQL metadata, a Redis broker and S3 staging, all started
natively on loopback by tests/topology/cluster.py and wired to the sandbox.

Every integration is triggered the way a person or a scheduler client would: through the REST API,
with params. Everything asserted is read back through the REST API (run states, task instances and
their hosts, Run Summaries from XCom), from the S3 server, or from the sandbox's vendor data.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import requests

from hub_sandbox.coverages import special_coverages
from hub_sandbox.generator import special_people
from hub_sandbox.recordkeeper import special_participants, special_plans
from tests.topology.cluster import STAGING_BUCKET, WORKERS, Cluster, running_cluster

pytestmark = pytest.mark.topology

EMPLOYEES, PLANS, PARTICIPANTS_PER_PLAN = 200, 6, 30
EXPORT, IMPORT, RESUBMIT = (
    "plansource_hcm_demographic_export",
    "plansource_deductions_import",
    "plansource_deductions_resubmit",
)
PLAN_SYNC, PARTICIPANT_SYNC, WRITEBACK = (
    "ijoin_plan_sync",
    "ijoin_participant_sync",
    "ijoin_enrollment_writeback",
)
DRAFT_REVIEW = "ijoin_plan_draft_review"
INITIAL_IMPORT = {"delta": True, "deduction_start_date": "2025-10-01", "plan_year_start_date": "2025-12-31"}
FAILING_COVERAGES = {category: ids[0] for category, ids in special_coverages(EMPLOYEES).items()}
BAD_EMPLOYEES = [
    special_people(EMPLOYEES)[category][0]
    for category in (
        "invalid_ssn",
        "subscriber_id_mismatch",
        "username_mismatch",
        "ssn_mismatch",
        "unmapped_code",
    )
]
SPECIAL_PLANS = {case: ids[0] for case, ids in special_plans(PLANS).items()}
VARIABLE_PAY_PLAN = SPECIAL_PLANS["variable_pay"]
NOT_100 = special_participants(PLANS, PARTICIPANTS_PER_PLAN)["allocations_not_100"]
SSN_LIKE = re.compile(r"(?<!\d)\d{3}-?\d{2}-?\d{4}(?!\d)")
RUN_TIMEOUT = 300.0  # seconds for one wave of runs (generous: 2 busy cores)


class AirflowApi:
    """The Airflow REST API (v2) of the cluster's api-server (all users are admins there)."""

    def __init__(self, base_url: str) -> None:
        self.base = f"{base_url}/api/v2"
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.base}{path}", timeout=30, **kwargs)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def unpause(self, dag_id: str) -> None:
        assert self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})["is_paused"] is False

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id)}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self.call(
            "GET", f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances", params={"limit": 100}
        )
        return list(body["task_instances"])

    def summary(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The Run Summary the ``summary`` task pushed (its return_value XCom)."""
        entry = self.call(
            "GET", f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/summary/xcomEntries/return_value"
        )
        value = entry["value"]
        assert isinstance(value, dict), value
        return value


@dataclass
class Run:
    dag_id: str
    run_id: str
    state: str = "queued"
    summary: dict[str, Any] | None = None
    task_instances: list[dict[str, Any]] | None = None

    @property
    def hosts(self) -> set[str]:
        return {ti["hostname"] for ti in self.task_instances or [] if ti["hostname"]}


def wait_for(api: AirflowApi, cluster: Cluster, runs: list[Run], timeout: float = RUN_TIMEOUT) -> None:
    """Until every run has finished; then its task instances and summary are read back."""
    deadline = time.monotonic() + timeout
    pending = list(runs)
    while pending:
        for run in list(pending):
            run.state = api.run_state(run.dag_id, run.run_id)
            if run.state in ("success", "failed"):
                pending.remove(run)
                run.task_instances = api.task_instances(run.dag_id, run.run_id)
                run.summary = api.summary(run.dag_id, run.run_id)
        dead = [s.name for s in cluster.services if s.name != "airflow-init" and not s.running()]
        assert not dead, f"cluster processes died: {dead}"
        if pending and time.monotonic() > deadline:
            stuck = {r.dag_id: api.task_instances(r.dag_id, r.run_id) for r in pending}
            pytest.fail(f"runs not finished after {timeout:.0f}s: {stuck}")
        time.sleep(1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(
        employees=EMPLOYEES, plans=PLANS, participants_per_plan=PARTICIPANTS_PER_PLAN
    ) as started:
        yield started


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> AirflowApi:
    return AirflowApi(cluster.api_url)


@pytest.fixture(scope="module")
def runs(cluster: Cluster, api: AirflowApi) -> dict[str, Run]:
    """Every integration, triggered through the REST API in two waves (the second needs the first)."""
    deadline = time.monotonic() + 120
    while {d["dag_id"] for d in api.call("GET", "/dags", params={"limit": 100})["dags"]} < {
        EXPORT, IMPORT, RESUBMIT, PLAN_SYNC, PARTICIPANT_SYNC, WRITEBACK, DRAFT_REVIEW
    }:  # fmt: skip
        assert time.monotonic() < deadline, "the dag-processor did not parse every DAG in time"
        time.sleep(1)
    for dag_id in (EXPORT, IMPORT, RESUBMIT, PLAN_SYNC, PARTICIPANT_SYNC, WRITEBACK):
        # DRAFT_REVIEW stays paused: the run the Plan Sync requests stays queued (no reviewer here).
        api.unpause(dag_id)

    first = {
        EXPORT: Run(EXPORT, api.trigger(EXPORT, {"delta": False})),
        IMPORT: Run(IMPORT, api.trigger(IMPORT, INITIAL_IMPORT)),
        PLAN_SYNC: Run(PLAN_SYNC, api.trigger(PLAN_SYNC, {})),
        WRITEBACK: Run(WRITEBACK, api.trigger(WRITEBACK, {})),
    }
    wait_for(api, cluster, list(first.values()))

    # The Transaction Assistant corrects two of the import's error records: it reads the import's
    # run manifest and source file from S3, written by whichever worker ran those tasks.
    error_rows = read_error_file(cluster, first[IMPORT].summary)
    keys = {row["record_key"].split("#")[1]: row["record_key"] for row in error_rows}
    corrections = {
        keys[FAILING_COVERAGES["negative_amount"]]: {
            "subscriber_premium": "12.50",
            "subscriber_pretax_premium": "12.50",
        },
        keys[FAILING_COVERAGES["unmapped_code"]]: {"plan_payroll_mapping_code": "MED-PPO"},
    }
    second = {
        RESUBMIT: Run(
            RESUBMIT,
            api.trigger(
                RESUBMIT, {"integration_reference_id": first[IMPORT].run_id, "corrections": corrections}
            ),
        ),
        PARTICIPANT_SYNC: Run(
            PARTICIPANT_SYNC, api.trigger(PARTICIPANT_SYNC, {"plan_ids": f"P0001,{VARIABLE_PAY_PLAN}"})
        ),
    }
    wait_for(api, cluster, list(second.values()))
    return {**first, **second}


def s3_key(cluster: Cluster, url: str) -> str:
    """``s3://<conn id>@<bucket>/<key>`` (a staged file's path in a summary) to its key in our bucket."""
    assert url.startswith("s3://"), f"not staged on S3: {url}"
    bucket_and_key = url.removeprefix("s3://").split("@", 1)[-1]
    bucket, _, key = bucket_and_key.partition("/")
    assert bucket == STAGING_BUCKET, url
    return key


def read_error_file(cluster: Cluster, summary: dict[str, Any] | None) -> list[dict[str, str]]:
    assert summary and summary["error_files"], summary
    key = s3_key(cluster, summary["error_files"][0])
    body = cluster.s3_client().get_object(Bucket=STAGING_BUCKET, Key=key)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(body)))


# -- the runs ------------------------------------------------------------------------------------

EXPECTED = {
    # dag_id: (run state, Run Summary status); "Completed with Errors" fails the run by design.
    EXPORT: ("failed", "Completed with Errors"),  # the seeded bad employees
    IMPORT: ("failed", "Completed with Errors"),  # the seeded failing coverages
    RESUBMIT: ("failed", "Completed with Errors"),  # two corrected, two still wrong
    PLAN_SYNC: ("failed", "Completed with Errors"),  # two plans fail validation
    PARTICIPANT_SYNC: ("failed", "Completed with Errors"),  # allocations not adding up to 100 %
    WRITEBACK: ("success", "Successful"),
}


def test_every_integration_reaches_its_expected_state(runs: dict[str, Run]) -> None:
    reached = {dag_id: (run.state, (run.summary or {}).get("status")) for dag_id, run in runs.items()}
    assert reached == EXPECTED
    for run in runs.values():
        assert run.summary and run.summary["integration_reference_id"] == run.run_id
        # Failed by its summary's status only: every stage before it succeeded.
        states = {ti["task_id"]: ti["state"] for ti in run.task_instances or []}
        assert all(state == "success" for task, state in states.items() if task != "summary"), (
            run.dag_id,
            states,
        )


def test_the_tasks_of_one_run_ran_on_both_workers(runs: dict[str, Run]) -> None:
    # The plan sync fans out one extract → transform → deliver per plan: more parallel tasks than one
    # worker takes (its concurrency, prefetch 1), so both must have run some.
    assert runs[PLAN_SYNC].hosts == set(WORKERS)
    # And no task of any run ran anywhere else.
    for run in runs.values():
        assert run.hosts <= set(WORKERS), (run.dag_id, run.hosts)
    assert set().union(*(run.hosts for run in runs.values())) == set(WORKERS)


def test_staged_files_are_on_s3_and_not_on_local_disk(cluster: Cluster, runs: dict[str, Run]) -> None:
    listed = cluster.s3_client().get_paginator("list_objects_v2").paginate(Bucket=STAGING_BUCKET)
    keys = {item["Key"] for page in listed for item in page.get("Contents", [])}
    for run in runs.values():
        summary = run.summary or {}
        staged = [*summary.get("source_files", []), *summary.get("error_files", [])]
        staged += [summary["output_file"]] if summary.get("output_file") else []
        assert staged, f"{run.dag_id} staged nothing"
        for url in staged:
            assert s3_key(cluster, url) in keys, (run.dag_id, url)
        # The run manifest the summary task writes beside the run's files.
        safe_run_id = "".join(c if c.isalnum() or c in "_.-" else "_" for c in run.run_id)
        assert f"staging/{run.dag_id}/{safe_run_id}/run_manifest.json" in keys, run.dag_id
    # Nothing fell back to the local default (file://$AIRFLOW_HOME/benefits_hub_staging), on the
    # workers' own disks or elsewhere.
    for disk in (cluster.airflow_home, *(cluster.worker_disk(w) for w in WORKERS)):
        assert not list(disk.rglob("benefits_hub_staging")), disk
        assert not [p for p in disk.rglob("*") if p.suffix in (".jsonl", ".csv")], disk


def test_summaries_are_right(cluster: Cluster, runs: dict[str, Run]) -> None:
    export = runs[EXPORT].summary or {}
    assert export["records_processed"] == EMPLOYEES
    assert export["errors"] == len(BAD_EMPLOYEES) and export["records_created"] == 1  # the new hire
    assert {row["record_key"] for row in read_error_file(cluster, export)} == set(BAD_EMPLOYEES)

    current = plansource_coverages(cluster, "plan_year = 2026 AND test_employee = 0")
    good = [c for c in current if c["id"] not in FAILING_COVERAGES.values()]
    imported = runs[IMPORT].summary or {}
    assert imported["records_processed"] == len(current)
    assert imported["errors"] == len(FAILING_COVERAGES) and imported["records_created"] == len(good)

    resubmit = runs[RESUBMIT].summary or {}
    assert resubmit["resubmission_of"] == runs[IMPORT].run_id
    assert resubmit["records_processed"] == len(FAILING_COVERAGES) and resubmit["records_created"] == 2
    still_wrong = {row["record_key"].split("#")[1] for row in read_error_file(cluster, resubmit)}
    assert still_wrong == {FAILING_COVERAGES["unknown_employee"], FAILING_COVERAGES["end_before_start"]}
    loaded = hcm_deduction_ids(cluster)
    assert loaded == {c["id"] for c in good} | {
        FAILING_COVERAGES["negative_amount"],
        FAILING_COVERAGES["unmapped_code"],
    }

    plan_sync = runs[PLAN_SYNC].summary or {}
    by_plan = {o["plan_id"]: o["status"] for o in plan_sync["outcomes"]}
    assert by_plan == {
        f"P{k:04d}": (
            "Failed"
            if f"P{k:04d}" in (SPECIAL_PLANS["no_ein"], SPECIAL_PLANS["fund_without_ticker"])
            else "Successful with warnings"
            if f"P{k:04d}" == SPECIAL_PLANS["lineup_changed"]
            else "Successful"
        )
        for k in range(1, PLANS + 1)
    }
    assert plan_sync["errors"] == 2 and plan_sync["drafts_created"] == 1

    participants = runs[PARTICIPANT_SYNC].summary or {}
    assert participants["records_created"] == 2 * PARTICIPANTS_PER_PLAN
    synced_plans = ("P0001", VARIABLE_PAY_PLAN)
    assert {row["record_key"] for row in read_error_file(cluster, participants)} == {
        f"{plan}/{p}" for p in NOT_100 for plan in synced_plans if p.startswith(plan)
    }

    writeback = runs[WRITEBACK].summary or {}
    assert writeback["records_processed"] == 3 and writeback["records_created"] == 3


def test_the_draft_waits_for_its_reviewer_in_a_run_of_its_own(api: AirflowApi, runs: dict[str, Run]) -> None:
    requested = api.call("GET", f"/dags/{DRAFT_REVIEW}/dagRuns")["dag_runs"]
    plan_id = SPECIAL_PLANS["lineup_changed"]
    assert [(run["conf"]["plan_id"], run["conf"]["plan_sync_run_id"]) for run in requested] == [
        (plan_id, runs[PLAN_SYNC].run_id)
    ]
    # One review per draft version: its run id names the plan and the version it shows.
    version = requested[0]["conf"]["version_id"]
    assert version.startswith(plan_id) and requested[0]["dag_run_id"] == f"review__{plan_id}__{version}"


def test_no_ssn_in_summaries_or_error_files(cluster: Cluster, runs: dict[str, Run]) -> None:
    ssns = seeded_ssns(cluster)
    assert ssns
    for run in runs.values():
        summary = run.summary or {}
        texts = [json.dumps(summary)]
        if summary.get("error_files"):
            texts += [json.dumps(row) for row in read_error_file(cluster, summary)]
        found = {m.replace("-", "") for text in texts for m in SSN_LIKE.findall(text)} & ssns
        assert not found, f"{len(found)} seeded SSN(s) in {run.dag_id}'s summary or error file"


def test_vendor_pools_exist(api: AirflowApi, runs: dict[str, Run]) -> None:
    pools = {pool["name"]: pool["slots"] for pool in api.call("GET", "/pools")["pools"]}
    assert pools["plansource_api"] > 0 and pools["ijoin_api"] > 0


def plansource_coverages(cluster: Cluster, where: str) -> list[dict[str, Any]]:
    with sqlite3.connect(cluster.sandbox.plansource_state_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM payroll_coverage WHERE {where}")]


def seeded_ssns(cluster: Cluster) -> set[str]:
    """Every SSN the sandbox seeded (HCM and recordkeeper), as nine digits."""
    ssns: set[str] = set()
    for db, sql in (
        (cluster.sandbox.hcm_db_path, "SELECT ssn FROM hcm_person"),
        (cluster.sandbox.recordkeeper_db_path, "SELECT ssn FROM rk_participant"),
    ):
        with sqlite3.connect(db) as conn:
            ssns.update(str(row[0]).replace("-", "") for row in conn.execute(sql) if row[0])
    return ssns


def hcm_deduction_ids(cluster: Cluster) -> set[str]:
    with sqlite3.connect(cluster.sandbox.hcm_db_path) as conn:
        return {row[0] for row in conn.execute("SELECT plansource_coverage_id FROM hcm_payroll_deduction")}
