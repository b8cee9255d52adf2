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


def pytest_collection_modifyitems(items: list) -> None:
    """The PII and secret scan reads the task logs, XComs and error files every other test left behind:
    it runs last of the whole suite, whatever directories were collected."""
    scan = [item for item in items if item.nodeid.startswith("tests/e2e/test_zz_no_pii_in_logs.py")]
    if scan:
        items[:] = [item for item in items if item not in scan] + scan
