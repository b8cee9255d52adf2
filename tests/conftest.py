"""Test-wide Airflow settings: an isolated AIRFLOW_HOME, this repo's dags/ and plugins/, no examples.

Set before anything imports Airflow, so every test (and every ``airflow`` subprocess a test starts)
sees the same configuration.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_HOME = Path(os.environ.get("HUB_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="hub-airflow-home-"))

os.environ["AIRFLOW_HOME"] = str(_HOME)
# Parallel workers (pytest-xdist) each get a home of their own: the PII scan, run after them, reads them all.
if os.environ.get("HUB_TEST_HOMES_FILE"):
    with open(os.environ["HUB_TEST_HOMES_FILE"], "a", encoding="utf-8") as _homes:
        _homes.write(f"{_HOME}\n")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__BENEFITS_HUB__STAGING_URL"] = (_HOME / "staging").as_uri()
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_HOME / "logs")
# One Fernet key for this process and every airflow subprocess: otherwise `airflow db migrate` writes a
# generated key into airflow.cfg after this process loaded none, and Variables written by one side
# cannot be read by the other.
if not os.environ.get("AIRFLOW__CORE__FERNET_KEY"):
    from cryptography.fernet import Fernet

    os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()


# The modules that start a whole Airflow or cluster (a minute or more each): first, so that parallel
# workers take them while the many short tests fill the gaps, rather than one worker ending on them.
# The third worker starts on in-process runs (test_ijoin) rather than a third start-up at once: three
# Airflows starting together on two cores took twice as long each (a browser module's set-up 62 s -> 118 s).
SLOW_FIRST = (
    "tests/e2e/test_plan_admin_browser.py",
    "tests/e2e/test_clerk_journeys_browser.py",
    "tests/e2e/test_ijoin.py",
    "tests/topology/test_celery_cluster.py",
    "tests/e2e/test_make_airflow.py",
    "tests/e2e/test_deadline_alert.py",
    "tests/e2e/test_activity_monitor.py",
    "tests/faults/test_concurrency.py",
)


def _slowness(item: object) -> int:
    path = str(getattr(item, "nodeid", "")).split("::")[0]
    return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)


def pytest_collection_modifyitems(items: list) -> None:
    """Slow modules first (see SLOW_FIRST), the rest in file order. The PII and secret scan reads the
    task logs, XComs and error files every other test left behind: it runs last of the whole suite."""
    items.sort(key=_slowness)  # stable: a module's tests keep their order
    scan = [item for item in items if item.nodeid.startswith("tests/e2e/test_zz_no_pii_in_logs.py")]
    if scan:
        items[:] = [item for item in items if item not in scan] + scan
