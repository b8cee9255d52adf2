"""The staging area: files that stages hand each other, keyed by DAG id and run id.

Built on Airflow's ``ObjectStoragePath``: ``file://`` on one machine, ``s3://...`` (or any fsspec
store) on a cluster, so no task ever reads another task's local disk. Set it with the Airflow config
option ``[benefits_hub] staging_url`` (env ``AIRFLOW__BENEFITS_HUB__STAGING_URL``) and, for object
stores, ``[benefits_hub] staging_conn_id``.

Records are JSON lines, written and read one at a time: memory stays flat whatever the row count.
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

from benefits_hub.models import ErrorRow, StagedFile

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
    """Writes dict records as JSON lines and counts them."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self.rows = 0
        self.manifest: StagedFile | None = None  # set when the file is closed

    def write(self, record: dict[str, Any]) -> None:
        self._text.write(json.dumps(record, separators=(",", ":"), default=str))
        self._text.write("\n")
        self.rows += 1

    def write_many(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.write(record)


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
    from benefits_hub.values import looks_like_formula

    text = "" if value is None else str(value)
    return "'" + text if looks_like_formula(text) else text


class SafeCsvWriter:
    """``csv.writer`` whose every cell goes through :func:`csv_safe`: the one way the hub writes a CSV
    (error files, the census, delivered lists, the Activity Monitor's export)."""

    def __init__(self, stream: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([csv_safe(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter(csv.DictWriter):
    """``csv.DictWriter`` through :func:`csv_safe` (the census)."""

    def writerow(self, rowdict: Any) -> Any:
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
        if not state:
            self._mark_run()
        self._ensure_parent(path)
        hashing: _HashingWriter | None = None
        try:
            with path.open("wb") as raw:
                hashing = _HashingWriter(raw)
                buffered = io.BufferedWriter(hashing, buffer_size=1 << 20)
                text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
                try:
                    yield text, hashing
                finally:
                    text.flush()
                    buffered.flush()
                    text.detach()
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
    def records(self, name: str) -> Iterator[RecordWriter]:
        """Write ``name`` as JSON lines; the manifest is on ``writer.manifest`` afterwards."""
        path = self.path(name)
        with self._open_text(path) as (text, hashing):
            writer = RecordWriter(text)
            yield writer
        writer.manifest = StagedFile(path=str(path), rows=writer.rows, sha256=hashing.sha256.hexdigest())

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
        with ObjectStoragePath(path).open("r", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
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
