"""Retention of staged files: a run's staging folder is deleted once it has been idle for the retention.

Staged files hold PII by necessity (the HCM's employees, PlanSource's coverages, the census). Each run's
folder (``<staging>/<dag>/<run>/``: source, changes, output, error files and the run manifest) goes as
one unit once its newest file is older than ``[benefits_hub] staging_retention_days`` (env
``AIRFLOW__BENEFITS_HUB__STAGING_RETENTION_DAYS``, default 30). Error files and the run manifest go
with their run: the Transaction Assistant needs a run's source file, error file and manifest together,
so keeping some without the others would only offer a correction that cannot be made. A run's Run
Summary stays in Airflow (XCom) under Airflow's own ``airflow db clean`` policy.

Never deleted: the hub's own state (``_state/``: delivered fingerprints, which are hashes, not PII),
and the folder of a run that is still queued or running (asked of Airflow for the run named in the
folder's ``_run.json``; a folder without one is kept while its DAG has any run in flight).

:func:`expired` and :func:`deletable` are the pure rules; :func:`purge_expired_runs` does the listing
and deleting through ``ObjectStoragePath`` (``file://`` or ``s3://`` alike).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from benefits_hub.staging import RUN_MARKER, STATE_FOLDER

DEFAULT_RETENTION_DAYS = 30
IN_FLIGHT_STATES = ("queued", "running")


@dataclass(frozen=True)
class StagedRun:
    """One run's folder in the staging area."""

    dag_folder: str
    run_folder: str
    last_modified: datetime  # of its newest file

    @property
    def folder(self) -> str:
        return f"{self.dag_folder}/{self.run_folder}"


@dataclass(frozen=True)
class RunOwner:
    """The Airflow run a folder belongs to; ``run_id`` None when the folder does not say."""

    dag_id: str
    run_id: str | None


# Given the owning run, is it still queued or running? (Airflow's view; see purge_expired_runs.)
InFlight = Callable[[RunOwner], bool]


@dataclass
class RetentionReport:
    """What one retention pass did: counts and folder names (DAG and run ids, never data)."""

    retention_days: int
    runs_seen: int = 0
    deleted: list[str] = field(default_factory=list)
    kept_in_flight: list[str] = field(default_factory=list)

    def as_xcom(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention_days,
            "runs_seen": self.runs_seen,
            "deleted": len(self.deleted),
            "kept_in_flight": len(self.kept_in_flight),
        }


def retention_days() -> int:
    """``[benefits_hub] staging_retention_days``; at least 1 (0 would delete a run as it finishes)."""
    from airflow.configuration import conf

    days = conf.getint("benefits_hub", "staging_retention_days", fallback=DEFAULT_RETENTION_DAYS)
    if days < 1:
        raise ValueError(f"[benefits_hub] staging_retention_days must be 1 or more, not {days}")
    return days


# -- the rules (pure) ----------------------------------------------------------------------------------
def is_run_folder(dag_folder: str) -> bool:
    """Top-level folders starting with '_' are the hub's own (``_state``), never runs."""
    return not dag_folder.startswith("_") and dag_folder != STATE_FOLDER


def expired(runs: Iterable[StagedRun], *, now: datetime, retention: timedelta) -> list[StagedRun]:
    """The run folders whose newest file is at least ``retention`` old, oldest first."""
    cutoff = now - retention
    old = [run for run in runs if is_run_folder(run.dag_folder) and run.last_modified <= cutoff]
    return sorted(old, key=lambda run: (run.last_modified, run.folder))


def deletable(candidates: Iterable[StagedRun], in_flight: Mapping[str, bool]) -> list[StagedRun]:
    """The expired folders that may go: not those whose run is in flight (or not known to be done)."""
    return [run for run in candidates if in_flight.get(run.folder, True) is False]


# -- listing and deleting ------------------------------------------------------------------------------
def _modified(info: Mapping[str, Any]) -> datetime | None:
    # fsspec's local store gives 'mtime' (epoch seconds); s3fs gives 'LastModified' (a datetime).
    value = info.get("mtime", info.get("LastModified", info.get("last_modified", info.get("created"))))
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def scan(base: Any) -> list[StagedRun]:
    """Every run folder under the staging ``base`` (an ObjectStoragePath) with its newest file's time."""
    root = str(base.path).rstrip("/")
    if not base.exists():
        return []
    newest: dict[tuple[str, str], datetime] = {}
    for name, info in base.fs.find(root, detail=True).items():
        parts = str(name)[len(root) :].strip("/").split("/")
        if len(parts) < 3 or not is_run_folder(parts[0]):
            continue  # a run's files are <dag>/<run>/...; _state is not a run
        modified = _modified(info)
        if modified is None:
            continue  # a store that does not say when: never guess a file old
        key = (parts[0], parts[1])
        if key not in newest or modified > newest[key]:
            newest[key] = modified
    return [StagedRun(dag, run, modified) for (dag, run), modified in newest.items()]


def owner_of(base: Any, run: StagedRun) -> RunOwner:
    """The Airflow run named in the folder's ``_run.json``; the folder's DAG alone without one."""
    marker = base / run.dag_folder / run.run_folder / RUN_MARKER
    try:
        with marker.open("r", encoding="utf-8") as handle:
            recorded = json.load(handle)
        return RunOwner(str(recorded["dag_id"]), str(recorded["run_id"]))
    except (OSError, ValueError, KeyError, TypeError):
        return RunOwner(run.dag_folder, None)


def airflow_in_flight(ti: Any) -> InFlight:
    """Ask Airflow (through the task's own API, as any task may) whether a folder's run is in flight."""
    states = list(IN_FLIGHT_STATES)

    def ask(owner: RunOwner) -> bool:
        if owner.run_id is None:  # which run is not known: keep it while its DAG has any run going
            return ti.get_dr_count(dag_id=owner.dag_id, states=states) > 0
        return ti.get_dr_count(dag_id=owner.dag_id, run_ids=[owner.run_id], states=states) > 0

    return ask


def purge_expired_runs(
    in_flight: InFlight,
    *,
    now: datetime | None = None,
    days: int | None = None,
    base: Any = None,
    log: Any = None,
) -> RetentionReport:
    """Delete the run folders past the retention whose runs are over; returns what was done.

    ``in_flight`` answers for a folder's owning run (the DAG task asks Airflow); a lookup that fails
    keeps the folder until the next pass.
    """
    from benefits_hub.staging import staging_base

    days = days if days is not None else retention_days()
    now = now or datetime.now(UTC)
    base = base if base is not None else staging_base()
    runs = scan(base)
    report = RetentionReport(retention_days=days, runs_seen=len(runs))
    candidates = expired(runs, now=now, retention=timedelta(days=days))
    flags: dict[str, bool] = {}
    for run in candidates:
        owner = owner_of(base, run)
        try:
            flags[run.folder] = bool(in_flight(owner))
        except Exception as exc:  # Airflow did not answer: keep the folder, try again tomorrow
            if log is not None:
                log.warning("Could not tell whether the run of %s is over (%s); kept", run.folder, exc)
            flags[run.folder] = True
    doomed = deletable(candidates, flags)
    report.kept_in_flight = [run.folder for run in candidates if run not in doomed]
    for run in doomed:
        (base / run.dag_folder / run.run_folder).rmdir(recursive=True)
        report.deleted.append(run.folder)
        if log is not None:
            log.info("Deleted %s (last written %s)", run.folder, run.last_modified.isoformat())
    for folder in report.kept_in_flight:
        if log is not None:
            log.info("Kept %s: its run is still queued or running", folder)
    return report
