"""What the browser journeys share: Debian's Chromium driven by Playwright, and a whole Airflow with
its own sandbox (tests/e2e/airflow_services.py) for a module's journeys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.airflow_services import AirflowServices, airflow_services

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ACTION_MS = 30_000  # what a click or an assertion may wait for a page
# The hub's DAGs (one per file): the services are ready once the dag-processor parsed them all.
DAG_COUNT = len(list((Path(__file__).resolve().parents[2] / "dags").glob("*.py")))


@contextmanager
def sandboxed_airflow(
    tmp_path_factory: pytest.TempPathFactory, name: str, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[AirflowServices, Any]]:
    """A fresh sandbox (200 employees) and a whole Airflow on its connections."""
    from hub_sandbox import Sandbox

    box = Sandbox.start(tmp_path_factory.mktemp(f"{name}-sandbox"), employees=200, seed=42, token_ttl=300)
    try:
        env = {**box.connection_env(), **(extra_env or {})}
        with airflow_services(
            tmp_path_factory.mktemp(f"{name}-airflow"), env, dag_count=DAG_COUNT
        ) as services:
            yield services, box
    finally:
        box.stop()


@contextmanager
def chromium_tab(shots: Path) -> Iterator[Any]:
    """One tab of Debian's Chromium (never a downloaded browser; missing it fails, not skips)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps`.", pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    # A page's assertions wait as long as its actions (Playwright's own default is 5 s): on two busy
    # cores a run page can take longer than that to load after a trigger, and a person would wait.
    expect.set_options(timeout=ACTION_MS)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.set_default_timeout(ACTION_MS)
            yield tab
        finally:
            browser.close()


def open_from_navigation(page: Any, services: AirflowServices, name: str) -> Any:
    """Airflow's home page, then its navigation entry ``name`` (the Activity Monitor, the Plan Summary):
    the hub's page inside Airflow's frame, whose heading is that name."""
    from playwright.sync_api import expect

    page.goto(services.base_url + "/")
    page.get_by_role("link", name=name).click()
    frame = page.frame_locator("iframe")
    expect(frame.locator("h1")).to_have_text(name)
    return frame
