"""The staging area: files that stages hand each other, keyed by DAG id and run id.

Built on Airflow's ``ObjectStoragePath``: ``file://`` on one machine, ``s3://...`` (or any fsspec
store) on a cluster, so no task ever reads another task's local disk. Set it with the Airflow config
option ``[benefits_hub] staging_url`` (env ``AIRFLOW__BENEFITS_HUB__STAGING_URL``) and, for object
stores, ``[benefits_hub] staging_conn_id``.

Records are JSON lines (benefits_hub.codec), written and read one at a time: memory stays flat
whatever the row count.
XCom carries only the :class:`~benefits_hub.models.StagedFile` manifest (path, rows, sha256).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from benefits_hub import codec
from benefits_hub.models import ErrorRow, StagedFile
from benefits_hub.values import FORMULA_STARTS, looks_like_formula

DEFAULT_STAGING_DIRNAME = "benefits_hub_staging"
STATE_FOLDER = "_state"  # the hub's own state (delivered fingerprints): kept, never a run's folder
# In each run's folder: the Airflow run that owns it (an integration set stages its members under their
# own DAG ids), so the retention (benefits_hub.retention) can ask whether that run is still going.
RUN_MARKER = "_run.json"


def staging_base_url() -> str:
    from airflow.configuration import conf

    configured = conf.get("benefits_hub", "staging_url", fallback=None)
    if configured:
        return configured
    airflow_home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(airflow_home, DEFAULT_STAGING_DIRNAME).resolve().as_uri()


def staging_conn_id() -> str | None:
    from airflow.configuration import conf

    return conf.get("benefits_hub", "staging_conn_id", fallback=None) or None


def staging_base(base_url: str | None = None, conn_id: str | None = None) -> Any:
    """The staging store's root as an ``ObjectStoragePath`` (configured URL and connection by default)."""
    from airflow.sdk import ObjectStoragePath

    base = base_url or staging_base_url()
    conn = conn_id if conn_id is not None else staging_conn_id()
    return ObjectStoragePath(base, conn_id=conn) if conn else ObjectStoragePath(base)


def _current_dag_run() -> tuple[str, str] | None:
    """(dag_id, run_id) of the Airflow run this code runs in; None outside a task."""
    try:
        from airflow.sdk import get_current_context

        dag_run = get_current_context()["dag_run"]
    except Exception:  # no task context (unit tests, benchmarks' harness)
        return None
    return str(dag_run.dag_id), str(dag_run.run_id)


def _safe(part: str) -> str:
    # Run ids carry ':' and '+' (timestamps); keep object keys portable.
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", part)


class StagedFileDamaged(ValueError):
    """A staged file cannot be read back whole (cut off by a full disk or a killed writer)."""


class StagingFull(OSError):
    """The staging store has no space left; the message says where, how much, and what to do."""

    def __str__(self) -> str:  # the words alone, not "[Errno 28] ..."
        return str(self.strerror)


# "No space left on device" and "Disk quota exceeded": either way the stage cannot write its files.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


class _HashingWriter(io.RawIOBase):
    """Counts and hashes bytes on their way to the underlying file."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha256.update(data)
        self.size += len(data)
        return self._raw.write(data)


class RecordWriter:
    """Writes dict records as JSON lines (benefits_hub.codec) and counts them."""

    def __init__(self, out: IO[bytes], order_key: str | None = None) -> None:
        self._out = out
        self.rows = 0
        self.manifest: StagedFile | None = None  # set when the file is closed
        # Checked as the rows go by: whether they ascend by ``order_key`` (for a merge join later).
        self.order_key = order_key
        self.ordered = order_key is not None
        self._last_key: Any = None

    def _check_order(self, record: dict[str, Any]) -> None:
        self._check_key(record.get(self.order_key))  # type: ignore[arg-type]

    def _check_key(self, key: Any) -> None:
        if not isinstance(key, str) or (self._last_key is not None and key < self._last_key):
            self.ordered = False
        self._last_key = key

    def write(self, record: dict[str, Any]) -> None:
        if self.ordered:
            self._check_order(record)
        self._out.write(codec.dumps_line(record))
        self.rows += 1

    def write_received(self, record: dict[str, Any]) -> None:
        """A vendor's object as it came (:class:`codec.Received`): its bytes, not encoded again; any
        other record as :meth:`write` writes it."""
        raw = getattr(record, "raw", None)
        if raw is None:
            self.write(record)
            return
        if self.ordered:
            self._check_order(record)
        self._out.write(raw + b"\n")
        self.rows += 1

    def write_lines(self, lines: Iterable[tuple[Any, bytes]]) -> None:
        """Records already encoded, one JSON object per line without its newline, each with its
        ``order_key`` value (a vendor's objects as they came: ``PlanSourceHook.iter_subscriber_lines``)."""
        write, rows = self._out.write, 0
        for key, line in lines:
            if self.ordered:
                self._check_key(key)
            write(line + b"\n")
            rows += 1
        self.rows += rows

    def write_many(self, records: Iterable[dict[str, Any]]) -> None:
        if self.order_key is not None:
            for record in records:
                self.write(record)
            return
        write, line = self._out.write, codec.dumps_line
        rows = 0
        for record in records:
            write(line(record))
            rows += 1
        self.rows += rows


class ErrorWriter:
    """Writes :class:`ErrorRow` rows as CSV (values already masked) and counts distinct records."""

    def __init__(self, text: IO[str]) -> None:
        self._csv = SafeCsvWriter(text)
        self._csv.writerow(ErrorRow.CSV_COLUMNS)
        self.rows = 0
        self._records: set[str] = set()
        self.manifest: StagedFile | None = None  # set when the file is closed

    def add(self, row: ErrorRow) -> None:
        self._csv.writerow([getattr(row, c) for c in ErrorRow.CSV_COLUMNS])
        self.rows += 1
        self._records.add(row.record_key)

    @property
    def records(self) -> int:
        return len(self._records)


def csv_safe(value: object) -> str:
    """A cell that cannot run as a formula when a clerk opens the file in a spreadsheet: formula-shaped
    text gets a leading apostrophe; numbers and phone numbers ("-12.50", "+1 555 0100") stay as they are."""
    if value is None:
        return ""
    text = value if type(value) is str else str(value)
    # Most cells start with none of the signs: one string test, not a call (a census has 3M cells).
    if text and text[0] in FORMULA_STARTS and looks_like_formula(text):
        return "'" + text
    return text


# A cell, after the NUL that joins a row's cells for the look below, that starts with a formula's sign.
_MAYBE_FORMULA = re.compile("\x00[" + re.escape(FORMULA_STARTS) + "]")


def safe_row(row: list[Any]) -> list[Any]:
    """``row`` with every cell through :func:`csv_safe`, as csv writes it. One look at the whole row
    first (a census has 31 cells a row and a million rows): only a row with a cell that starts with a
    formula's sign goes cell by cell. csv writes None as "" and any other value as str(), as csv_safe
    does, so a row with nothing to defuse is written as it is."""
    if _MAYBE_FORMULA.search("\x00" + "\x00".join(map(str, row))) is None:
        return row
    return list(map(csv_safe, row))


class SafeCsvWriter:
    """``csv.writer`` whose every cell goes through :func:`csv_safe`: the one way the hub writes a CSV
    (error files, the census, delivered lists, the Activity Monitor's export)."""

    def __init__(self, stream: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow(safe_row(list(row)))

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter(csv.DictWriter):
    """``csv.DictWriter`` through :func:`csv_safe` (the census)."""

    def writerow(self, rowdict: Any) -> Any:
        if self.extrasaction == "ignore" and self.restval == "":  # straight to the row, as DictWriter would
            # make it (csv_safe writes a missing key's None as the "" of restval)
            return self.writer.writerow(safe_row(list(map(rowdict.get, self.fieldnames))))
        return super().writerow({key: csv_safe(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Any]) -> None:
        for rowdict in rowdicts:
            self.writerow(rowdict)


class StagingArea:
    """One run's folder in the staging store."""

    def __init__(self, dag_id: str, run_id: str, base_url: str | None = None, conn_id: str | None = None):
        self.base = staging_base(base_url, conn_id)
        self.dag_id, self.run_id = dag_id, run_id
        self.root = self.base / _safe(dag_id) / _safe(run_id)
        self.state_root = self.base / STATE_FOLDER / _safe(dag_id)
        self._marked = False
        self.bytes_written = 0  # by this instance (one stage): said when the store runs out of space

    def path(self, name: str) -> Any:
        return self.root / name

    @staticmethod
    def _ensure_parent(path: Any) -> None:
        # Object stores have no folders; local ones need them.
        if getattr(path, "protocol", "file") in ("file", "local", ""):
            path.parent.mkdir(parents=True, exist_ok=True)

    def _mark_run(self) -> None:
        """Before this instance's first file in the run folder: record the Airflow run that owns it."""
        if self._marked:
            return
        owner = _current_dag_run() or (self.dag_id, self.run_id)
        path = self.root / RUN_MARKER
        self._ensure_parent(path)
        with path.open("w", encoding="utf-8") as handle:
            json.dump({"dag_id": owner[0], "run_id": owner[1]}, handle)
        self._marked = True

    @contextmanager
    def _open_text(self, path: Any, *, state: bool = False) -> Iterator[tuple[IO[str], _HashingWriter]]:
        with self._open_binary(path, state=state) as (buffered, hashing):
            text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
            try:
                yield text, hashing
            finally:
                text.flush()
                text.detach()

    @contextmanager
    def _open_binary(
        self, path: Any, *, state: bool = False
    ) -> Iterator[tuple[io.BufferedWriter, _HashingWriter]]:
        if not state:
            self._mark_run()
        self._ensure_parent(path)
        hashing: _HashingWriter | None = None
        try:
            with path.open("wb") as raw:
                hashing = _HashingWriter(raw)
                buffered = io.BufferedWriter(hashing, buffer_size=1 << 20)
                try:
                    yield buffered, hashing
                finally:
                    buffered.flush()
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                raise
            tried = self.bytes_written + (hashing.size if hashing else 0)
            with contextlib.suppress(OSError):  # half a file helps nobody; the retry writes it again
                path.unlink()
            raise StagingFull(exc.errno, self.full_message(path, tried)) from None
        self.bytes_written += hashing.size

    def full_message(self, path: Any, tried: int) -> str:
        return (
            f"The staging area is full: no space left for {str(path).rsplit('/', 1)[-1]} in "
            f"{self.root} after this stage wrote {_megabytes(tried)}. Free space there (the "
            "hub_staging_retention DAG deletes settled runs' files) or point [benefits_hub] staging_url "
            "at a larger store; the stage's half-written file was removed and its retry starts over."
        )

    @contextmanager
    def records(self, name: str, *, order_key: str | None = None) -> Iterator[RecordWriter]:
        """Write ``name`` as JSON lines; the manifest is on ``writer.manifest`` afterwards. With
        ``order_key``, the manifest says whether the rows ascended by that field (``ordered_by``)."""
        path = self.path(name)
        with self._open_binary(path) as (buffered, hashing):
            writer = RecordWriter(buffered, order_key)
            yield writer
        writer.manifest = StagedFile(
            path=str(path),
            rows=writer.rows,
            sha256=hashing.sha256.hexdigest(),
            ordered_by=order_key if writer.ordered else None,
        )

    @contextmanager
    def binary_file(self, name: str, *, state: bool = False) -> Iterator[tuple[IO[bytes], Any]]:
        """A file written as bytes (JSON lines of fingerprints, say); yields (stream, path)."""
        path = (self.state_root if state else self.root) / name
        with self._open_binary(path, state=state) as (buffered, _hashing):
            yield buffered, path

    @contextmanager
    def errors(self, name: str) -> Iterator[ErrorWriter]:
        path = self.path(name)
        with self._open_text(path) as (text, hashing):
            writer = ErrorWriter(text)
            yield writer
        writer.manifest = StagedFile(path=str(path), rows=writer.rows, sha256=hashing.sha256.hexdigest())

    @contextmanager
    def text_file(self, name: str, *, state: bool = False) -> Iterator[tuple[IO[str], Any]]:
        """A plain text file (a census CSV, say); yields (stream, path)."""
        path = (self.state_root if state else self.root) / name
        with self._open_text(path, state=state) as (text, _hashing):
            yield text, path

    def write_json(self, name: str, value: Any) -> str:
        """A small JSON document in this run's folder (the run manifest); returns its path."""
        # One write: json.dump would hand an object store's file many small pieces (10x slower).
        text = json.dumps(value, indent=2, default=str)
        with self.text_file(name) as (stream, path):
            stream.write(text)
        return str(path)

    def write_json_file(self, name: str, value: Any) -> StagedFile:
        """A JSON document a run read or sent (one plan's data, say), with its manifest: listed in the
        Run Summary's files like any staged record file."""
        text = json.dumps(value, indent=2, default=str)
        path = self.path(name)
        with self._open_text(path) as (stream, hashing):
            stream.write(text)
        return StagedFile(path=str(path), rows=1, sha256=hashing.sha256.hexdigest())

    def read_json(self, name: str) -> Any | None:
        path = self.path(name)
        if not path.exists():
            return None
        with path.open("r", encoding="utf-8") as handle:
            return json.load(handle)

    @staticmethod
    def read_records(manifest: StagedFile | dict[str, Any]) -> Iterator[dict[str, Any]]:
        from airflow.sdk import ObjectStoragePath

        path = manifest.path if isinstance(manifest, StagedFile) else manifest["path"]
        loads = codec.loads
        with ObjectStoragePath(path).open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    record = loads(line)
                except ValueError:
                    if not line.strip():
                        continue
                    # Never the line itself in the message: it may hold PII.
                    raise StagedFileDamaged(
                        f"The staged file {path.rsplit('/', 1)[-1]} is damaged at line {number} (cut off, or "
                        "not JSON). Run the integration again to stage it anew."
                    ) from None
                yield record

    @staticmethod
    def open_binary(path: str) -> IO[bytes]:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(path).open("rb")

    @staticmethod
    def copy_error_rows(sources: Iterable[str], target: ErrorWriter) -> None:
        """Append the rows of staged error CSVs to ``target`` (used to merge stage error files)."""
        from airflow.sdk import ObjectStoragePath

        for source in sources:
            with ObjectStoragePath(source).open("r", encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                for row in reader:
                    target._csv.writerow([row.get(c, "") for c in ErrorRow.CSV_COLUMNS])
                    target.rows += 1
                    target._records.add(row.get("record_key", ""))
