"""Downloads of a run's staged files: SSNs and birth dates masked line by line, formulas defused."""

from __future__ import annotations

import csv
import io
import json

from benefits_hub.ui.files import masked_lines, media_type


def test_csv_cells_are_masked_by_column_and_shape() -> None:
    census = [
        "employee_number,ssn,birthdate,last_name,note\r\n",
        "E000010,180-01-7851,1980-02-03,=cmd|' /C calc'!A0,called from 180017851\r\n",
    ]
    rows = list(csv.reader(io.StringIO("".join(masked_lines("output/census.csv", census)))))
    assert rows[0] == ["employee_number", "ssn", "birthdate", "last_name", "note"]
    assert rows[1][:3] == ["E000010", "***-**-7851", "****-**-**"]
    assert rows[1][3].startswith("'=")
    assert rows[1][4] == "called from ***-**-7851"


def test_json_lines_are_masked_by_key_however_deep() -> None:
    record = {"employee_number": "E1", "ssn": "180017851", "dependents": [{"birth_date": "2010-01-01"}]}
    lines = list(masked_lines("source/hcm_employees.jsonl", [json.dumps(record) + "\n", "\n"]))
    assert len(lines) == 1
    masked = json.loads(lines[0])
    assert masked["ssn"] == "***-**-7851" and masked["dependents"][0]["birth_date"] == "****-**-**"
    assert masked["employee_number"] == "E1"


def test_other_text_is_masked_by_shape() -> None:
    assert list(masked_lines("notes.txt", ["ssn 180-01-7851 born 1980-02-03\n"])) == [
        "ssn ***-**-7851 born ****-**-**\n"
    ]


def test_media_types() -> None:
    assert media_type("error_file.csv") == "text/csv"
    assert media_type("x.pages.jsonl") == "application/x-ndjson"
    assert media_type("x.bin") == "text/plain"
