"""Retention of staged files: the pure rules, then real deletion on a file:// and an s3:// store."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from benefits_hub.retention import (
    RunOwner,
    StagedRun,
    deletable,
    expired,
    owner_of,
    purge_expired_runs,
    retention_days,
    scan,
)
from benefits_hub.staging import RUN_MARKER, StagingArea

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
DAYS = timedelta(days=1)


def _run(dag: str, run: str, age: timedelta) -> StagedRun:
    return StagedRun(dag, run, NOW - age)


# -- the rules --------------------------------------------------------------------------------------
def test_expired_is_at_least_the_retention_old_and_never_the_hubs_state() -> None:
    runs = [
        _run("plansource_deductions_import", "fresh", 29 * DAYS),
        _run("plansource_deductions_import", "exactly", 30 * DAYS),
        _run("plansource_hcm_demographic_export", "old", 400 * DAYS),
        _run("_state", "plansource_hcm_demographic_export", 999 * DAYS),
        _run("_anything_of_the_hub", "x", 999 * DAYS),
    ]
    chosen = expired(runs, now=NOW, retention=30 * DAYS)
    assert [r.folder for r in chosen] == [
        "plansource_hcm_demographic_export/old",  # oldest first
        "plansource_deductions_import/exactly",
    ]


def test_deletable_keeps_runs_in_flight_and_runs_not_known_to_be_over() -> None:
    done, going, unknown = (
        _run("d", "done", 40 * DAYS),
        _run("d", "going", 40 * DAYS),
        _run("d", "?", 40 * DAYS),
    )
    assert deletable([done, going, unknown], {"d/done": False, "d/going": True}) == [done]


def test_retention_days_comes_from_the_config_and_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__BENEFITS_HUB__STAGING_RETENTION_DAYS", raising=False)
    assert retention_days() == 30
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__STAGING_RETENTION_DAYS", "7")
    assert retention_days() == 7
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__STAGING_RETENTION_DAYS", "0")
    with pytest.raises(ValueError, match="staging_retention_days"):
        retention_days()


# -- real stores ------------------------------------------------------------------------------------
def _stage(base_url: str, conn_id: str, dag_id: str, run_id: str) -> StagingArea:
    """A run's folder as the stages write it: records, an error file, the manifest; and the hub's state."""
    staging = StagingArea(dag_id, run_id, base_url=base_url, conn_id=conn_id)
    with staging.records("source/hcm_employees.jsonl") as writer:
        writer.write({"person_number": "E000001", "ssn": "180017851"})
    with staging.errors("errors/transform.csv"):
        pass
    staging.write_json("run_manifest.json", {"summary": {}})
    with staging.text_file("delivered_fingerprints.jsonl", state=True) as (stream, _):
        stream.write('{"n":"E000001","f":"abc"}\n')
    return staging


def _purge_and_check(base_url: str, conn_id: str, later: datetime) -> None:
    old = _stage(base_url, conn_id, "plansource_hcm_demographic_export", "manual__2026-01-01T00:00:00+00:00")
    running = _stage(
        base_url, conn_id, "plansource_deductions_import", "scheduled__2026-01-02T00:00:00+00:00"
    )
    base = old.base
    runs = {r.folder: r for r in scan(base)}
    assert set(runs) == {
        "plansource_hcm_demographic_export/manual__2026-01-01T00_00_00_00_00",
        "plansource_deductions_import/scheduled__2026-01-02T00_00_00_00_00",
    }  # _state is never listed as a run
    # Outside a task the marker names the folder's own DAG and the exact run id (':' and '+' kept).
    owner = owner_of(base, runs["plansource_deductions_import/scheduled__2026-01-02T00_00_00_00_00"])
    assert owner == RunOwner("plansource_deductions_import", "scheduled__2026-01-02T00:00:00+00:00")

    asked: list[RunOwner] = []

    def in_flight(owner: RunOwner) -> bool:  # Airflow's answer, for this unit test
        asked.append(owner)
        return owner.run_id == running.run_id

    report = purge_expired_runs(in_flight, now=later, days=30, base=base)
    assert report.deleted == ["plansource_hcm_demographic_export/manual__2026-01-01T00_00_00_00_00"]
    assert report.kept_in_flight == ["plansource_deductions_import/scheduled__2026-01-02T00_00_00_00_00"]
    assert len(asked) == 2
    assert not old.root.exists()
    assert (running.root / "source" / "hcm_employees.jsonl").exists()
    assert (old.state_root / "delivered_fingerprints.jsonl").exists()  # the hub's state stays
    # Nothing is past the retention yet: nothing goes.
    assert (
        purge_expired_runs(lambda _: False, now=later - timedelta(days=31), days=30, base=base).deleted == []
    )

    # A lookup that fails keeps the folder.
    def broken(_: RunOwner) -> bool:
        raise ConnectionError("api-server away")

    assert purge_expired_runs(broken, now=later, days=30, base=base).deleted == []
    assert running.root.exists()


def test_purge_on_a_local_store(tmp_path: Path) -> None:
    _purge_and_check(tmp_path.as_uri(), "", datetime.now(UTC) + timedelta(days=31))


def test_a_folder_without_marker_names_only_its_dag(tmp_path: Path) -> None:
    staging = _stage(tmp_path.as_uri(), "", "plansource_deductions_import", "legacy")
    (staging.root / RUN_MARKER).unlink()
    [run] = scan(staging.base)
    assert owner_of(staging.base, run) == RunOwner("plansource_deductions_import", None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """moto's S3-compatible server on loopback, a bucket, and an Airflow aws connection to it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        # moto accepts any key pair; these only make the requests signed.
        connection: dict[str, Any] = {
            "conn_type": "aws",
            "login": "retention-test",
            "password": "retention-test",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        monkeypatch.setenv("AIRFLOW_CONN_RETENTION_S3", json.dumps(connection))
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="retention-test",
            aws_secret_access_key="retention-test",
            region_name="us-east-1",
        ).create_bucket(Bucket="hub-staging")
        yield "s3://hub-staging/staging", "retention_s3"
    finally:
        server.stop()


def test_purge_on_s3(s3_store: tuple[str, str]) -> None:
    base_url, conn_id = s3_store
    _purge_and_check(base_url, conn_id, datetime.now(UTC) + timedelta(days=31))
