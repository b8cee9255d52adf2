from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from benefits_hub.window import RunWindow, compute_window, next_watermark, parse_instant

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_delta_off_is_full() -> None:
    window = compute_window(delta=False, lookback_days=5, run_start=NOW, watermark=None)
    assert window.is_full and window.end == NOW


def test_lookback_days() -> None:
    window = compute_window(delta=True, lookback_days=3, run_start=NOW, watermark=NOW - timedelta(hours=1))
    assert window.start == NOW - timedelta(days=3)


def test_since_last_successful_run() -> None:
    mark = NOW - timedelta(hours=5)
    window = compute_window(delta=True, lookback_days=None, run_start=NOW, watermark=mark)
    assert window.start == mark and window.end == NOW


def test_first_scheduled_run_uses_data_interval() -> None:
    start = NOW - timedelta(hours=1)
    window = compute_window(
        delta=True, lookback_days=None, run_start=NOW, watermark=None, data_interval_start=start
    )
    assert window.start == start


def test_first_manual_run_without_interval_covers_a_day() -> None:
    window = compute_window(delta=True, lookback_days=None, run_start=NOW, watermark=None)
    assert window.start == NOW - timedelta(days=1)


def test_narrowed_run_does_not_move_watermark() -> None:
    window = RunWindow(NOW - timedelta(hours=1), NOW, "x")
    assert next_watermark(window, narrowed=True, watermark=NOW - timedelta(hours=1)) is None


def test_gap_behind_lookback_does_not_move_watermark() -> None:
    # The last success was 3 days ago; a 1-day lookback leaves 2 days uncovered.
    window = RunWindow(NOW - timedelta(days=1), NOW, "x")
    assert next_watermark(window, narrowed=False, watermark=NOW - timedelta(days=3)) is None


def test_contiguous_run_moves_watermark() -> None:
    window = RunWindow(NOW - timedelta(hours=2), NOW, "x")
    assert next_watermark(window, narrowed=False, watermark=NOW - timedelta(hours=1)) == NOW


def test_full_run_moves_watermark_and_never_backwards() -> None:
    assert next_watermark(RunWindow(None, NOW, "x"), narrowed=False, watermark=None) == NOW
    assert (
        next_watermark(RunWindow(None, NOW, "x"), narrowed=False, watermark=NOW + timedelta(hours=1)) is None
    )


def test_a_window_from_the_watermark_starts_an_overlap_earlier_and_still_moves_it() -> None:
    mark = NOW - timedelta(hours=1)
    window = compute_window(
        delta=True, lookback_days=None, run_start=NOW, watermark=mark, overlap=timedelta(minutes=15)
    )
    assert window.start == mark - timedelta(minutes=15) and window.end == NOW
    assert "15-minute overlap" in window.basis
    assert next_watermark(window, narrowed=False, watermark=mark) == NOW  # no gap: it moves


def test_the_overlap_is_configured_in_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    from benefits_hub.window import DEFAULT_OVERLAP, configured_overlap

    monkeypatch.delenv("AIRFLOW__BENEFITS_HUB__WINDOW_OVERLAP_MINUTES", raising=False)
    assert configured_overlap() == DEFAULT_OVERLAP
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__WINDOW_OVERLAP_MINUTES", "5")
    assert configured_overlap() == timedelta(minutes=5)


def test_one_serialised_form_round_trips() -> None:
    window = RunWindow(NOW - timedelta(hours=2), NOW, "since the last successful run")
    assert RunWindow.from_details(window.to_details()) == window
    full = RunWindow(None, NOW, "full run")
    assert RunWindow.from_details(full.to_details()) == full


def test_a_watermark_kept_as_a_date_or_naive_stamp_reads_as_utc() -> None:
    # The deductions import kept its watermark as a date before the one model: an upgrade keeps it.
    assert parse_instant("2026-12-05") == datetime(2026, 12, 5, tzinfo=UTC)
    assert parse_instant("2026-12-05 06:01:02") == datetime(2026, 12, 5, 6, 1, 2, tzinfo=UTC)
    assert parse_instant("2026-12-05T06:01:02+01:00") == datetime(2026, 12, 5, 5, 1, 2, tzinfo=UTC)
    assert parse_instant(None) is None and parse_instant("") is None


def test_a_source_filtered_by_dates_gets_every_day_the_window_touches() -> None:
    # A window from 23:50 to 06:00 the next day spans two UTC days; both are asked for.
    window = RunWindow(datetime(2026, 12, 5, 23, 50, tzinfo=UTC), datetime(2026, 12, 6, 6, tzinfo=UTC), "")
    assert window.days() == ("2026-12-05", "2026-12-06")
    overlapped = compute_window(
        delta=True,
        lookback_days=None,
        run_start=datetime(2026, 12, 6, 6, tzinfo=UTC),
        watermark=datetime(2026, 12, 6, 0, 5, tzinfo=UTC),
        overlap=timedelta(minutes=15),
    )
    assert overlapped.days() == ("2026-12-05", "2026-12-06")  # the overlap reaches back over midnight
