"""The benchmark's results: rows collected while `make bench` runs, then written as JSON, drawn as a
chart (hub/floor by size, one line per integration) and put in the README's performance table.

    python -m benchmarks.results           # after the bench scripts: JSON + PNG + README table

Each bench script adds its rows with :func:`add_row` (to ``benchmarks/results/run.jsonl``, started
afresh by `make bench`). The chart is an SVG drawn here and rasterised by the Chromium the browser tests
use, so it needs no plotting library.
"""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROWS = RESULTS / "run.jsonl"
LATEST = RESULTS / "latest.json"
CHART = RESULTS / "hub_over_floor.png"
README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
PALETTE = ("#1f6feb", "#8250df", "#bf8700", "#1a7f37", "#cf222e", "#57606a")
TARGET = 2.0  # the bound at 1M records


def add_row(row: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with ROWS.open("a", encoding="utf-8") as out:
        out.write(json.dumps({**row, "commit": machine()["commit"]}) + "\n")


def read_rows() -> list[dict[str, Any]]:
    """The rows of this bench, the last one of each integration and size (a script run again for one
    integration, after a fix, replaces its rows rather than adding to them)."""
    if not ROWS.exists():
        return []
    rows = [json.loads(line) for line in ROWS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return list({(row["integration"], row["size"]): row for row in rows}.values())


def machine() -> dict[str, Any]:
    import subprocess

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=README.parent,
        check=False,
    ).stdout.strip()
    return {
        "commit": commit or None,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def size_label(size: int) -> str:
    if size >= 1_000_000 and size % 100_000 == 0:
        return f"{size / 1_000_000:g}M"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000}k"
    return f"{size:,}"


def table(rows: list[dict[str, Any]]) -> str:
    """The README's table: one line per integration and size."""
    lines = [
        "| integration | records | hub s | floor s | hub/floor | Airflow s | peak RSS MiB "
        "| CPU s by stage (E/T/D) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        cpu = row.get("stage_cpu_seconds") or {}
        by_stage = " / ".join(f"{cpu.get(s, 0):.1f}" for s in ("extract", "transform", "deliver"))
        lines.append(
            f"| {row['integration']} | {size_label(row['size'])} | {row['hub_seconds']:.1f} | "
            f"{row['floor_seconds']:.1f} | {row['hub_over_floor']:.2f}x | {row['airflow_seconds']:.1f} | "
            f"{row['peak_rss_mib']:.0f} | {by_stage} |"
        )
    return "\n".join(lines)


def chart_svg(rows: list[dict[str, Any]], width: int = 900, height: int = 380) -> str:
    """hub/floor against records (log scale), a line per integration, the 2x target dashed."""
    import math

    left, right, top, bottom = 60, 340, 30, 50
    key_x = width - right + 60  # the legend, clear of the last size's value labels
    sizes = sorted({r["size"] for r in rows}) or [1]
    lo, hi = math.log10(min(sizes)), math.log10(max(sizes))
    hi = hi if hi > lo else lo + 1
    top_ratio = max([TARGET * 1.25, *(r["hub_over_floor"] * 1.1 for r in rows)])

    def x(size: int) -> float:
        span = (math.log10(size) - lo) / (hi - lo) if len(sizes) > 1 else 0.5
        return left + span * (width - left - right)

    def y(ratio: float) -> float:
        return top + (1 - ratio / top_ratio) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="DejaVu Sans, sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">hub time / floor time, by records</text>',
    ]
    step = 1 if top_ratio <= 8 else 2
    for tick in range(0, int(top_ratio) + 1, step):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
            f'<text x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}x</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{y(TARGET):.1f}" y2="{y(TARGET):.1f}" '
        'stroke="#cf222e" stroke-dasharray="6 4"/>'
    )
    for size in sizes:
        label = size_label(size)
        ticks_y = height - bottom + 18
        parts.append(f'<text x="{x(size):.1f}" y="{ticks_y}" text-anchor="middle">{label}</text>')
    parts.append(
        f'<text x="{(width - right + left) / 2}" y="{height - 12}" text-anchor="middle">records</text>'
    )
    # Value labels at the same size sit at least a line apart, so that close ratios stay readable.
    label_y: dict[tuple[int, str], float] = {}
    for size in sizes:
        placed = -math.inf
        for row in sorted((r for r in rows if r["size"] == size), key=lambda r: -r["hub_over_floor"]):
            placed = max(y(row["hub_over_floor"]) - 7, placed + 14)  # just above its own line
            label_y[(size, row["integration"])] = placed
    labels: list[str] = []
    for legend, name in enumerate(dict.fromkeys(r["integration"] for r in rows)):
        points = sorted((r["size"], r["hub_over_floor"]) for r in rows if r["integration"] == name)
        colour = PALETTE[legend % len(PALETTE)]
        path = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        for s, v in points:  # value labels go on top of every line, after them
            labels.append(
                f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="4" fill="{colour}"/>'
                f'<text x="{x(s) + 8:.1f}" y="{label_y[(s, name)]:.1f}" fill="{colour}" stroke="white" '
                f'stroke-width="4" paint-order="stroke">{v:.2f}x</text>'
            )
        ly = top + 10 + 20 * legend
        parts.append(
            f'<rect x="{key_x}" y="{ly}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{key_x + 18}" y="{ly + 10}">{name}</text>'
        )
    # The target is the legend's last entry: a label beside its line could sit on a legend entry.
    ly = top + 10 + 20 * len(dict.fromkeys(r["integration"] for r in rows))
    parts.append(
        f'<line x1="{key_x}" x2="{key_x + 12}" y1="{ly + 6}" y2="{ly + 6}" stroke="#cf222e" '
        'stroke-width="2" stroke-dasharray="3 2"/>'
        f'<text x="{key_x + 18}" y="{ly + 10}" fill="#cf222e">target {TARGET:g}x</text>'
    )
    parts += [*labels, "</svg>"]
    return "".join(parts)


def render_png(svg: str, target: Path) -> bool:
    """Rasterise the SVG with the browser tests' Chromium; False (and no chart) without one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return False
    chromium = Path("/usr/bin/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium) if chromium.exists() else None,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            page = browser.new_page(device_scale_factor=2)
            page.set_content(f"<html><body style='margin:0'>{svg}</body></html>")
            page.locator("svg").screenshot(path=str(target))
        finally:
            browser.close()
    return True


def update_readme(text: str) -> bool:
    content = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(content):
        return False
    README.write_text(pattern.sub(lambda _m: f"{START}\n{text}\n{END}", content), encoding="utf-8")
    return True


def main() -> int:
    # One integration's sizes together, smallest first, in the order the integrations ran.
    order = {name: n for n, name in enumerate(dict.fromkeys(r["integration"] for r in read_rows()))}
    rows = sorted(read_rows(), key=lambda r: (order[r["integration"]], r["size"]))
    if not rows:
        print(f"No benchmark rows in {ROWS}: run the bench scripts first (make bench).")
        return 1
    facts = machine()
    LATEST.write_text(json.dumps({"machine": facts, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    drawn = render_png(chart_svg(rows), CHART)
    # A script run again alone (one integration, one size) replaces only its rows: say so.
    commits = list(dict.fromkeys(str(r.get("commit") or "an earlier commit") for r in rows))
    where = (
        f"commit {commits[0]}"
        if len(commits) == 1
        else "commits " + ", ".join(commits) + " (per row in the JSON)"
    )
    summary = (
        f"Measured by `make bench` at {where} on {facts['cores']} cores, Python "
        f"{facts['python']}, {facts['date']}; "
        f"figures in `benchmarks/results/latest.json`.\n\n{table(rows)}\n\n"
        + ("![hub/floor by size](benchmarks/results/hub_over_floor.png)" if drawn else "")
    )
    update_readme(summary.strip())
    print(f"\n{table(rows)}\n\nWritten: {LATEST}" + (f", {CHART}" if drawn else " (no Chromium: no chart)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
