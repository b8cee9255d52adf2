from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from benefits_hub.models import ErrorRow
from benefits_hub.staging import StagingArea


def test_records_round_trip_with_manifest(tmp_path: Path) -> None:
    staging = StagingArea(
        "dag_x", "manual__2026-11-25T10:00:00+00:00", base_url=tmp_path.as_uri(), conn_id=""
    )
    with staging.records("source/rows.jsonl") as writer:
        for i in range(3):
            writer.write({"n": i, "amount": "1.10"})
    manifest = writer.manifest
    assert manifest is not None and manifest.rows == 3
    path = Path(manifest.path.removeprefix("file://"))
    assert "manual__2026-11-25T10_00_00_00_00" in str(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest.sha256
    assert [r["n"] for r in StagingArea.read_records(manifest)] == [0, 1, 2]


def test_error_file_counts_records_and_defuses_formulas(tmp_path: Path) -> None:
    staging = StagingArea("dag_x", "run", base_url=tmp_path.as_uri(), conn_id="")
    with staging.errors("errors/x.csv") as errors:
        errors.add(
            ErrorRow(record_key="E1", field="last_name", value="=cmd|' /C calc'!A0", rule="r", reason="x")
        )
        errors.add(ErrorRow(record_key="E1", field="ssn", value="***-**-1234", rule="r", reason="y"))
    assert errors.rows == 2 and errors.records == 1
    with Path(errors.manifest.path.removeprefix("file://")).open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["value"].startswith("'=")
