"""The window of a run: which changes it covers, and when it may move the next run's start.

Pure functions, no Airflow: the rules of DESIGN.md section 4 in one place.

- ``delta`` off: everyone, no window.
- ``lookback_days`` set: the last ``lookback_days`` days before the run started.
- ``lookback_days`` empty: since the hub's watermark, the end of the window of the last successful
  full-scope run (never the last *attempt*: a failed run does not move it), **less an overlap**
  (``[benefits_hub] window_overlap_minutes``, default 15). Before any success the window falls back to
  the run's data interval, or the last day.

Why the overlap: a source stamps a change when its transaction *starts* (PostgreSQL's ``now()``), but
the change becomes readable only when it commits. A transaction open while a run reads commits with a
stamp before that run's end, which the next window (starting exactly there) would never see. Starting
each window a margin earlier reads such late commits (and any clock skew between the worker and the
database) again; the fingerprints and the delivery journal make sure what was already sent is not sent
twice. A transaction open longer than the overlap can still slip by: keep it above the longest write
transaction the source runs.

One model for every windowed read (the export over the HCM, the deductions import over PlanSource's
coverage changes): one serialised form (``RunWindow.to_details`` / ``from_details``, ISO 8601), one
next-watermark rule (``next_watermark``, applied by ``Integration.advance_watermark``). See docs/windows.md.

The watermark is the hub's own record rather than Airflow's ``prev_start_date_success``, which also
counts narrowed manual runs (DESIGN.md section 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

DEFAULT_OVERLAP = timedelta(minutes=15)


def parse_instant(value: Any) -> datetime | None:
    """A stored watermark or window bound, as an aware UTC datetime (the one serialised form is ISO 8601).

    Also reads a bare date (``2026-12-01``: how the deductions import kept its watermark before) as
    that day's midnight UTC, and a naive stamp as UTC, so an upgrade never loses a window.
    """
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, date):
        instant = datetime.combine(value, time.min)
    else:
        instant = datetime.fromisoformat(str(value))
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


@dataclass(frozen=True)
class RunWindow:
    start: datetime | None  # None = no lower bound (everyone)
    end: datetime
    basis: str  # why these bounds, for the run's log and summary

    @property
    def is_full(self) -> bool:
        return self.start is None

    def to_details(self) -> dict[str, Any]:
        """The window as a stage keeps it (validate's details) and the Run Summary shows it."""
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat(),
            "basis": self.basis,
        }

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> RunWindow:
        end = parse_instant(details["end"])
        assert end is not None
        return cls(parse_instant(details.get("start")), end, str(details.get("basis") or ""))

    def days(self) -> tuple[str, str]:
        """The window widened to whole UTC days, for sources whose filter takes dates (PlanSource's
        payroll coverages): ``[first day, last day]``, both inclusive."""
        assert self.start is not None
        return self.start.astimezone(UTC).date().isoformat(), self.end.astimezone(UTC).date().isoformat()


def compute_window(
    *,
    delta: bool,
    lookback_days: int | None,
    run_start: datetime,
    watermark: datetime | None,
    data_interval_start: datetime | None = None,
    overlap: timedelta = timedelta(0),
) -> RunWindow:
    if not delta:
        return RunWindow(None, run_start, "full run (Delta off): every employee")
    if lookback_days:
        start = run_start - timedelta(days=lookback_days)
        return RunWindow(start, run_start, f"last {lookback_days} day(s) (Lookback Days)")
    if watermark is not None:
        basis = "since the last successful run"
        if overlap:
            basis += f" (less a {int(overlap.total_seconds() // 60)}-minute overlap for late commits)"
        return RunWindow(min(watermark, run_start) - overlap, run_start, basis)
    if data_interval_start is not None and data_interval_start < run_start:
        return RunWindow(data_interval_start, run_start, "no successful run yet: the schedule's interval")
    return RunWindow(run_start - timedelta(days=1), run_start, "no successful run yet: the last day")


def next_watermark(window: RunWindow, *, narrowed: bool, watermark: datetime | None) -> datetime | None:
    """The watermark after a *successful* run with ``window``; ``None`` means leave it where it is.

    A run moves it only if it covered everyone from the current watermark on: a narrowed run
    (``include_employees``) or a lookback that starts after the watermark leaves a gap behind it.
    """
    if narrowed:
        return None
    covers_from_watermark = window.start is None or watermark is None or window.start <= watermark
    if not covers_from_watermark:
        return None
    if watermark is not None and window.end <= watermark:
        return None
    return window.end


def configured_overlap() -> timedelta:
    """``[benefits_hub] window_overlap_minutes`` (env ``AIRFLOW__BENEFITS_HUB__WINDOW_OVERLAP_MINUTES``)."""
    from airflow.configuration import conf

    minutes = conf.getint(
        "benefits_hub", "window_overlap_minutes", fallback=int(DEFAULT_OVERLAP.total_seconds() // 60)
    )
    return timedelta(minutes=max(minutes, 0))
