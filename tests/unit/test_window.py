from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
