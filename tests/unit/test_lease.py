"""The deliver lease: two attempts of one run's deliver never write at once (real staging folder, real
SQLite HCM; the two attempts are two threads, as an orphaned attempt and its retry are two processes)."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from benefits_hub.deductions.importer import DeductionsImport
from benefits_hub.deductions.writer import DeductionWriter
from benefits_hub.lease import DeliverLease, LeaseRefused
from benefits_hub.models import StageResult
from benefits_hub.operators.stages import run_stage
from tests.unit.test_journal import _coverage, _staging

LOG = logging.getLogger("test_lease")


def _staged_rows(tmp_path: Path, count: int) -> Any:
    from benefits_hub.deductions.rules import deduction_codes, map_coverage

    rows = [map_coverage(_coverage(n), deduction_codes(), known_person=True).row for n in range(1, count + 1)]
    with _staging(tmp_path).records("changes/deductions.jsonl") as staged:
        staged.write_many(rows)
    return staged.manifest


def _attempt(tmp_path: Path, manifest: Any, try_number: int, outcome: dict[int, Any]) -> threading.Thread:
    def deliver() -> None:
        from datetime import UTC, datetime

        from benefits_hub.integration import RunContext

        run = RunContext(
            dag_id="plansource_deductions_import", run_id="manual__1", run_type="manual", params={},
            run_start=datetime(2026, 11, 1, tzinfo=UTC), triggered_by="test", staging=_staging(tmp_path),
            results={"transform": StageResult(stage="transform", files={"deductions": manifest})},
        )  # fmt: skip
        try:
            outcome[try_number] = run_stage(DeductionsImport(run), "deliver", try_number, LOG)
        except Exception as exc:
            outcome[try_number] = exc

    thread = threading.Thread(target=deliver, name=f"try-{try_number}")
    thread.start()
    return thread


def _hold_the_first_in_its_second_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[threading.Event, threading.Event, list[str]]:
    """The first attempt stops inside its second chunk until ``go_on``; ``chunks`` names who wrote."""
    monkeypatch.setattr("benefits_hub.deductions.importer.WRITE_CHUNK", 500)  # 1,200 rows: three chunks
    inside, go_on = threading.Event(), threading.Event()
    original = DeductionWriter.apply
    chunks: list[str] = []

    def apply(self: DeductionWriter, rows: Any) -> Any:
        chunks.append(threading.current_thread().name)
        if chunks.count("try-1") == 2 and threading.current_thread().name == "try-1" and not inside.is_set():
            inside.set()
            assert go_on.wait(30)
        return original(self, rows)

    monkeypatch.setattr(DeductionWriter, "apply", apply)
    return inside, go_on, chunks


def _deductions(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM hcm_payroll_deduction").fetchone()[0])


def test_a_second_attempt_waits_while_the_first_writes_and_the_destination_is_exact(
    tmp_path: Path,
    hcm: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__DELIVER_LEASE_SECONDS", "3")
    manifest = _staged_rows(tmp_path, 1200)  # three chunks of up to 500
    inside, go_on, chunks = _hold_the_first_in_its_second_chunk(monkeypatch)
    outcome: dict[int, Any] = {}

    first = _attempt(tmp_path, manifest, 1, outcome)
    assert inside.wait(30)  # the first attempt is writing (one chunk committed, the next under way)
    second = _attempt(tmp_path, manifest, 2, outcome)
    time.sleep(2)
    assert second.is_alive() and 2 not in outcome  # it waits: the first holds the lease and renews it
    assert "try-2" not in chunks  # and has written nothing
    go_on.set()
    first.join(30)
    second.join(30)

    assert outcome[1].counters["records_created"] == 1200
    # The second went on after the first released the lease, and replayed what the first wrote.
    assert outcome[2].counters == {
        "records_created": 0, "records_updated": 0, "records_skipped": 0, "already_delivered": 1200
    }  # fmt: skip
    assert _deductions(hcm) == 1200


def test_a_second_attempt_refuses_after_the_wait_in_words_and_writes_nothing(
    tmp_path: Path,
    hcm: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__DELIVER_LEASE_SECONDS", "3")  # waits 2 x 3 s at most
    manifest = _staged_rows(tmp_path, 1200)
    inside, go_on, chunks = _hold_the_first_in_its_second_chunk(monkeypatch)
    outcome: dict[int, Any] = {}
    first = _attempt(tmp_path, manifest, 1, outcome)
    assert inside.wait(30)

    second = _attempt(tmp_path, manifest, 2, outcome)
    second.join(30)
    go_on.set()
    first.join(30)

    refused = outcome[2]
    assert isinstance(refused, LeaseRefused)
    assert "run manual__1, try 1" in str(refused) and "this attempt wrote nothing" in str(refused)
    assert "try-2" not in chunks
    assert outcome[1].counters["records_created"] == 1200 and _deductions(hcm) == 1200


def test_a_lease_its_holder_stopped_renewing_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "leases" / "deliver.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"holder": "run r, try 1 (killed)", "renewed_at": time.time() - 10}))
    lease = DeliverLease(path, "run r, try 2", ttl=3, wait=6)

    started = time.monotonic()
    with lease.held():
        assert json.loads(path.read_text())["holder"] == "run r, try 2"
    assert time.monotonic() - started < 2 and not path.exists()  # released at the end


def test_a_lease_whose_process_on_this_machine_is_gone_is_taken_over_at_once(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a killed worker's task process: exited, reaped
    path = tmp_path / "deliver.json"
    entry = {
        "holder": "run r, try 1",
        "renewed_at": time.time(),
        "host": socket.gethostname(),
        "pid": gone.pid,
    }
    path.write_text(json.dumps(entry))

    started = time.monotonic()
    with DeliverLease(path, "run r, try 2", ttl=60, wait=120).held():
        assert json.loads(path.read_text())["holder"] == "run r, try 2"
    assert time.monotonic() - started < 2  # not the 60 s a stale lease takes
