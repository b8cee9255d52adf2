from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from benefits_hub.window import RunWindow, compute_window, next_watermark

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
