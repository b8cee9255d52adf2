from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benefits_hub import codec
from benefits_hub.models import ErrorRow
from benefits_hub.staging import SafeCsvWriter, SafeDictWriter, StagingArea, csv_safe


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


def test_a_received_page_is_staged_as_the_bytes_it_came_as(tmp_path: Path) -> None:
    staging = StagingArea("dag", "run", base_url=tmp_path.as_uri())
    page = codec.received_data(b'{"data": {"b": 1, "a": [null, "x"]}}')
    with staging.records("source/pages.jsonl") as writer:
        writer.write_received(page)
        writer.write_received({"plain": True})  # any other record: encoded as write() does
    path = Path(writer.manifest.path.removeprefix("file://"))
    assert path.read_bytes() == b'{"b": 1, "a": [null, "x"]}\n{"plain":true}\n'
    assert list(staging.read_records(writer.manifest)) == [{"b": 1, "a": [None, "x"]}, {"plain": True}]
    assert writer.manifest.rows == 2


@pytest.mark.parametrize(
    ("keys", "ordered"), [(["E1", "E2", "E2"], True), (["E2", "E1"], False), (["E1", None], False)]
)
def test_encoded_lines_are_staged_as_they_are_and_their_order_checked(
    tmp_path: Path, keys: list[object], ordered: bool
) -> None:
    staging = StagingArea("dag", "run", base_url=tmp_path.as_uri())
    lines = [(key, b'{"employee_number": %s}' % codec.dumps(key)) for key in keys]
    with staging.records("source/subscribers.jsonl", order_key="employee_number") as writer:
        writer.write_lines(lines)
    path = Path(writer.manifest.path.removeprefix("file://"))
    assert path.read_bytes() == b"".join(line + b"\n" for _key, line in lines)
    assert [r["employee_number"] for r in staging.read_records(writer.manifest)] == keys
    assert writer.manifest.rows == len(keys)
    assert (writer.manifest.ordered_by == "employee_number") is ordered  # merge-joined only when it is


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


def test_a_full_disk_says_where_and_how_much_and_leaves_no_half_file(tmp_path: Path) -> None:
    """/dev/full answers every write with ENOSPC, as a full disk does: the file is linked to it."""
    from benefits_hub.staging import StagingFull

    staging = StagingArea("dag", "run-1", base_url=f"file://{tmp_path}")
    with staging.records("source/first.jsonl") as first:
        first.write_many({"n": n, "text": "x" * 100} for n in range(1_000))
    target = staging.path("output/full.jsonl")
    Path(str(target).removeprefix("file://")).parent.mkdir(parents=True, exist_ok=True)
    Path(str(target).removeprefix("file://")).symlink_to("/dev/full")

    with pytest.raises(StagingFull) as caught, staging.records("output/full.jsonl") as writer:
        writer.write_many({"n": n, "text": "y" * 100} for n in range(50_000))

    message = str(caught.value)
    assert message.startswith("The staging area is full: no space left for full.jsonl in ")
    assert "run-1" in message and "after this stage wrote " in message and " MB" in message
    assert "Errno" not in message and "staging_url" in message and "retry starts over" in message
    assert not Path(str(target).removeprefix("file://")).exists()  # the half-written file is gone


_CELLS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.text(alphabet="=@+-\t\r\x00 1a(", max_size=6), st.text(max_size=4),
)  # fmt: skip


@given(st.lists(_CELLS, min_size=1, max_size=6))
def test_the_csv_writers_defuse_every_formula_as_cell_by_cell_does(cells: list[object]) -> None:
    # The writers look at a whole row at once; they must write exactly what csv_safe per cell writes.
    fields = [f"c{i}" for i in range(len(cells))]
    quick, expected = io.StringIO(), io.StringIO()
    SafeDictWriter(quick, fieldnames=fields, extrasaction="ignore").writerow(
        dict(zip(fields, cells, strict=True))
    )
    csv.writer(expected).writerow([csv_safe(cell) for cell in cells])
    assert quick.getvalue() == expected.getvalue()
    quick = io.StringIO()
    SafeCsvWriter(quick).writerow(cells)
    assert quick.getvalue() == expected.getvalue()
