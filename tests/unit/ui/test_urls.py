"""The Activity Monitor's URL contract (notifications link to it)."""

from __future__ import annotations

import pytest

from benefits_hub.ui import urls

RUN_ID = "scheduled__2026-11-25T10:00:00+00:00"


def test_fixed_paths() -> None:
    assert urls.list_path() == "/activity-monitor/"
    assert urls.api_runs_path() == "/activity-monitor/api/runs"
    assert urls.csv_path() == "/activity-monitor/api/runs.csv"
    encoded = "scheduled__2026-11-25T10:00:00+00:00"  # ':' and '+' are valid in a path: kept
    assert urls.run_detail_path("dag_a", "a b/c?") == "/activity-monitor/runs/dag_a/a%20b%2Fc%3F"
    assert urls.run_detail_path("dag_a", RUN_ID) == f"/activity-monitor/runs/dag_a/{encoded}"
    assert urls.api_run_path("dag_a", RUN_ID) == f"/activity-monitor/api/runs/dag_a/{encoded}"


def test_list_with_filters_and_absolute_url() -> None:
    assert urls.list_path(status=["Failed", "Completed with Errors"], integration="dag_a") == (
        "/activity-monitor/?status=Failed&status=Completed+with+Errors&integration=dag_a"
    )
    assert urls.absolute_url("https://airflow.example.com/airflow/", urls.run_detail_path("d", "r")) == (
        "https://airflow.example.com/airflow/activity-monitor/runs/d/r"
    )


def test_file_and_task_instance_paths() -> None:
    assert urls.run_file_path("d", "r", "errors", 0) == "/activity-monitor/runs/d/r/files/errors/0"
    with pytest.raises(ValueError, match="kind"):
        urls.run_file_path("d", "r", "secrets", 0)
    assert urls.airflow_task_instance_path("d", "r", "summary") == "/dags/d/runs/r/tasks/summary"
    assert urls.airflow_task_instance_path("d", RUN_ID, "t").startswith(
        "/dags/d/runs/scheduled__2026-11-25T10%3A00%3A00%2B00%3A00/"
    )
    assert urls.airflow_task_instance_path("d", "r", "g.t", 3) == "/dags/d/runs/r/tasks/g.t/mapped/3"
