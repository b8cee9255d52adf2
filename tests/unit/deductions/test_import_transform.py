"""The import's transform against a SQLite HCM: its lookups of person numbers share one connection."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benefits_hub.deductions import importer
from benefits_hub.deductions.importer import DeductionsImport
from benefits_hub.integration import RunContext
from benefits_hub.models import StageResult
from benefits_hub.staging import StagingArea

PEOPLE = 1_200


def _coverage(n: int) -> dict[str, Any]:
    return {
        "id": f"PC{n}", "subscriber_code": f"E{n % PEOPLE:06d}", "plan_payroll_mapping_code": "MED-PPO",
        "subscriber_premium": "50.00", "org_premium": "100.00", "tax_treatment": "Pre-Tax",
        "change_effective_date": f"2026-01-{n // PEOPLE + 1:02d}", "org_plan_year_starts": "2026-01-01",
        "updated_at": "2025-11-01 10:00:00",
    }  # fmt: skip


def test_the_person_lookups_of_a_whole_transform_share_one_connection(
    tmp_path: Path, hcm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sqlite3.connect(hcm) as conn:
        conn.executemany(
            "INSERT INTO hcm_person (person_number, first_name, last_name, updated_at) "
            "VALUES (?, 'A', 'B', '2025-01-01')",
            [(f"E{n:06d}",) for n in range(PEOPLE - 1)],  # the last person is unknown to the HCM
        )
    staging = StagingArea("plansource_deductions_import", "manual__1", (tmp_path / "staging").as_uri())
    with staging.records("source/pages.jsonl") as pages:
        for first in range(0, 3 * PEOPLE, 400):
            pages.write({"payroll_coverages": [_coverage(n) for n in range(first, first + 400)]})
    opened: list[str] = []  # the HCM's connections (the transform's disk indexes are SQLite files too)
    connect = sqlite3.connect

    def counted(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if str(database).endswith(hcm.name):
            opened.append(str(database))
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counted)
    monkeypatch.setattr(importer, "CHUNK", 100)  # 36 lookups of person numbers
    run = RunContext(
        dag_id="plansource_deductions_import", run_id="manual__1", run_type="manual", params={},
        run_start=datetime(2026, 11, 1, tzinfo=UTC), triggered_by="test", staging=staging,
        results={
            "validate": StageResult(stage="validate", details={"plan_year_start": "2026-01-01"}),
            "extract": StageResult(stage="extract", files={"source": pages.manifest}),
        },
    )  # fmt: skip

    result = DeductionsImport(run).transform()

    assert len(opened) == 1
    assert result.counters["records_processed"] == 3 * PEOPLE
    # Found and not found through that one connection: the unknown person's three coverages are errors.
    assert result.counters["error_records"] == 3
    assert result.files["deductions"].rows == 3 * PEOPLE - 3
