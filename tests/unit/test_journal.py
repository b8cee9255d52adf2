"""The delivery journal: a retried or cleared deliver of the same run replays what was acknowledged and
sends nothing again (the export's PlanSource batches, the import's HCM chunks); a batch that changed, or
an entry cut off mid-write, is sent."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benefits_hub.deductions.importer import DeductionsImport
from benefits_hub.deductions.rules import deduction_codes, map_coverage
from benefits_hub.demographics.export import _BatchSender
from benefits_hub.integration import RunContext
from benefits_hub.journal import DeliveryJournal
from benefits_hub.models import StagedFile, StageResult
from benefits_hub.staging import StagingArea

SCHEMA = Path(__file__).resolve().parents[2] / "include" / "sql" / "hcm_schema.sql"


def _staging(tmp_path: Path, run_id: str = "manual__1") -> StagingArea:
    return StagingArea("some_dag", run_id, base_url=tmp_path.as_uri(), conn_id="")


def test_once_sends_once_per_run_and_replays_the_answer(tmp_path: Path) -> None:
    sent: list[Any] = []

    def send() -> dict[str, str]:
        sent.append(1)
        return {"status": "created"}

    first = DeliveryJournal(_staging(tmp_path))
    assert first.once("create", [{"n": "E1"}], send) == {"status": "created"}
    # A later attempt of the same run (a new task process): replayed, not sent.
    again = DeliveryJournal(_staging(tmp_path))
    assert again.once("create", [{"n": "E1"}], send) == {"status": "created"}
    assert len(sent) == 1 and again.replayed == 1 and again.sent == 0
    # Another batch, or another run, is sent.
    again.once("create", [{"n": "E2"}], send)
    DeliveryJournal(_staging(tmp_path, "manual__2")).once("create", [{"n": "E1"}], send)
    assert len(sent) == 3


def test_an_entry_cut_off_mid_write_is_sent_again(tmp_path: Path) -> None:
    journal = DeliveryJournal(_staging(tmp_path))
    key = journal.key("update", [1, 2])
    journal.root.mkdir(parents=True, exist_ok=True)
    (journal.root / f"{key}.json").write_text('{"answer": [')  # the worker died while writing
    assert journal.once("update", [1, 2], lambda: "sent") == "sent"
    assert journal.lookup(key) == {"answer": "sent"}


def test_the_journal_keeps_no_record_values(tmp_path: Path) -> None:
    journal = DeliveryJournal(_staging(tmp_path))
    journal.once("create", [{"ssn": "123456789", "birthdate": "1980-02-03"}], lambda: [{"status": "ok"}])
    stored = "".join(p.read_text() for p in Path(str(journal.root).removeprefix("file://")).iterdir())
    assert "123456789" not in stored and "1980-02-03" not in stored


class _PlanSource:
    """Records the writes; answers as PlanSource's bulk endpoints do."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def create_subscribers(self, subscribers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.writes.append("create")
        return [
            {"employee_number": s["employee_number"], "id": "PS1", "status": "created", "ssn": s["ssn"]}
            for s in subscribers
        ]

    def update_subscribers(self, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.writes.append("update")
        return [{"employee_number": c["employee_number"], "status": "updated"} for c in changes]

    def terminate_subscriber(self, number: str, termination: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(f"terminate {number}")
        return {"employee_number": number, "ssn": "123456789"}


CHANGES = [
    {"employee_number": "E1", "actions": ["create"], "fingerprint": "a",
     "fields": {"employee_number": "E1", "first_name": "Ada", "last_name": "L", "ssn": "123456789"}},
    {"employee_number": "E2", "actions": ["update"], "fingerprint": "b", "fields": {"city": "Dayton"}},
    {"employee_number": "E3", "actions": ["terminate"], "fingerprint": "c",
     "fields": {"termination_date": "2026-03-31", "termination_reason": "Layoff",
                "is_voluntary_termination": False}},
]  # fmt: skip


def _deliver_export(tmp_path: Path, plansource: _PlanSource) -> tuple[dict[str, int], list[Any]]:
    counters = dict.fromkeys(
        ("records_created", "records_updated", "terminations", "rehires", "already_delivered"), 0
    )
    with _staging(tmp_path).errors("errors/deliver.csv") as errors:
        sender = _BatchSender(plansource, errors, counters, DeliveryJournal(_staging(tmp_path)))
        done = [row for change in CHANGES for row in sender.add(change)] + sender.flush()
    return counters, sorted(done)


def test_a_retried_export_deliver_sends_nothing_twice_and_says_an_earlier_attempt_delivered_it(
    tmp_path: Path,
) -> None:
    plansource = _PlanSource()
    first = _deliver_export(tmp_path, plansource)
    assert plansource.writes == ["terminate E3", "create", "update"]
    assert first[0]["records_created"] == 1 and first[0]["terminations"] == 1
    delivered = first[0]["records_created"] + first[0]["records_updated"]

    retried = _deliver_export(tmp_path, plansource)

    assert plansource.writes == ["terminate E3", "create", "update"]  # nothing sent again
    # This attempt wrote nothing; every record is reported once, as delivered by the earlier attempt.
    assert retried[0] == {
        "records_created": 0, "records_updated": 0, "terminations": 0, "rehires": 0,
        "already_delivered": delivered,
    }  # fmt: skip
    assert retried[1] == first[1]  # the same delivered list


def _coverage(n: int) -> dict[str, Any]:
    return {
        "id": f"PC{n}", "subscriber_code": f"E{n:06d}", "plan_payroll_mapping_code": "MED-PPO",
        "subscriber_premium": "50.00", "org_premium": "100.00", "tax_treatment": "Pre-Tax",
        "change_effective_date": "2026-01-01", "org_plan_year_starts": "2026-01-01",
        "updated_at": "2025-11-01 10:00:00",
    }  # fmt: skip


def _deduction_rows(count: int) -> list[dict[str, Any]]:
    return [map_coverage(_coverage(n), deduction_codes(), known_person=True).row for n in range(1, count + 1)]


def _stage_rows(tmp_path: Path, rows: list[dict[str, Any]]) -> StagedFile:
    """``rows`` as the import's transform stages them (the file the deliver reads)."""
    with _staging(tmp_path).records("changes/deductions.jsonl") as staged:
        staged.write_many(rows)
    assert staged.manifest is not None
    return staged.manifest


def _import_deliver(tmp_path: Path, staged: Any) -> StageResult:
    run = RunContext(
        dag_id="plansource_deductions_import",
        run_id="manual__1",
        run_type="manual",
        params={},
        run_start=datetime(2026, 11, 1, tzinfo=UTC),
        triggered_by="test",
        staging=_staging(tmp_path),
        results={"transform": StageResult(stage="transform", files={"deductions": staged})},
    )
    return DeductionsImport(run).deliver()


def test_a_retried_import_deliver_writes_nothing_twice_and_says_an_earlier_attempt_did(
    tmp_path: Path, hcm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("benefits_hub.deductions.importer.WRITE_CHUNK", 500)
    staged = _stage_rows(tmp_path, _deduction_rows(1200))  # three chunks of up to 500

    first = _import_deliver(tmp_path, staged)
    with sqlite3.connect(hcm) as conn:
        # From here on, every write to the deductions table is counted.
        conn.executescript(
            "CREATE TABLE writes (n INTEGER);"
            "CREATE TRIGGER ins AFTER INSERT ON hcm_payroll_deduction "
            " BEGIN INSERT INTO writes VALUES (1); END;"
            "CREATE TRIGGER upd AFTER UPDATE ON hcm_payroll_deduction "
            " BEGIN INSERT INTO writes VALUES (1); END;"
        )
    retried = _import_deliver(tmp_path, staged)

    assert first.counters == {"records_created": 1200, "records_updated": 0, "records_skipped": 0}
    assert retried.counters == {
        "records_created": 0, "records_updated": 0, "records_skipped": 0, "already_delivered": 1200
    }  # fmt: skip
    with sqlite3.connect(hcm) as conn:
        assert conn.execute("SELECT COUNT(*) FROM writes").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM hcm_payroll_deduction").fetchone()[0] == 1200


def test_a_chunk_is_keyed_by_its_staged_file_so_rows_staged_anew_are_written(
    tmp_path: Path, hcm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The keys come from the staged file's digest and the chunk's place in it, not from the chunk's
    # rows encoded again: a transform that stages other rows (a person corrected one in PlanSource) is
    # a new file, and its chunks are written, however the run's earlier deliver went.
    monkeypatch.setattr("benefits_hub.deductions.importer.WRITE_CHUNK", 500)
    rows = _deduction_rows(1000)
    _import_deliver(tmp_path, _stage_rows(tmp_path, rows))
    rows[999] = {**rows[999], "employee_amount": "75.00"}  # in the second chunk

    again = _import_deliver(tmp_path, _stage_rows(tmp_path, rows))

    assert again.counters == {"records_created": 0, "records_updated": 1, "records_skipped": 999}


def test_staged_keys_name_the_file_the_batch_and_its_size() -> None:
    staged = StagedFile(path="file:///run/payload.jsonl", rows=1200, sha256="ab" * 32)
    key = DeliveryJournal.staged_key("participants-P1", staged, 2, 500)
    assert key == f"participants-P1-{'ab' * 20}-500x2"
    restaged = staged.model_copy(update={"sha256": "cd" * 32})
    others = {
        DeliveryJournal.staged_key("participants-P1", staged, 1, 500),
        DeliveryJournal.staged_key("participants-P1", staged, 2, 250),
        DeliveryJournal.staged_key("participants-P2", staged, 2, 500),
        DeliveryJournal.staged_key("participants-P1", restaged, 2, 500),
    }
    assert key not in others and len(others) == 4
    with pytest.raises(ValueError, match="no digest"):
        DeliveryJournal.staged_key("chunk", staged.model_copy(update={"sha256": ""}), 0, 500)


def test_staged_batches_cover_the_file_in_order_each_with_its_key(tmp_path: Path) -> None:
    staged = _stage_rows(tmp_path, _deduction_rows(5))
    rows = list(_staging(tmp_path).read_records(staged))
    batches = list(DeliveryJournal(_staging(tmp_path)).staged_batches("chunk", staged, 2))
    assert [batch for batch, _ in batches] == [rows[0:2], rows[2:4], rows[4:5]]
    keys = [DeliveryJournal.staged_key("chunk", staged, number, 2) for number in range(3)]
    assert [key for _, key in batches] == keys
