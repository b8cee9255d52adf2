"""The Activity Monitor's URLs: the one place that builds them (notifications link here too).

Paths are relative to the api-server's root (``[api] base_url``); :func:`absolute_url` puts one under a
base URL for a message sent outside the UI. Ids are percent-encoded: run ids carry ``:`` and ``+``.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

PREFIX = "/activity-monitor"
RUN_FILE_KINDS = ("source", "output", "errors")
LOCAL_TIME_SCRIPT = f"{PREFIX}/static/local-time.js"


def _part(value: str) -> str:
    # ':' and '+' (every Airflow run id has them) stay as they are: the Airflow UI compares the frame's
    # path with its decoded route and reloads the frame when they differ, which would drop whatever a
    # person had typed into a page just opened. Both are valid in a path segment.
    return quote(value, safe=":+")


def _airflow_part(value: str) -> str:
    # The Airflow UI's own links encode ids fully (encodeURIComponent).
    return quote(value, safe="")


def list_path(**filters: str | list[str]) -> str:
    """The HTML list, optionally with filters (``integration``, ``status``, ``date_from``...)."""
    query = urlencode(filters, doseq=True)
    return f"{PREFIX}/" + (f"?{query}" if query else "")


def run_detail_path(dag_id: str, run_id: str) -> str:
    """One run's detail page: its whole Run Summary, files, task logs."""
    return f"{PREFIX}/runs/{_part(dag_id)}/{_part(run_id)}"


def api_runs_path() -> str:
    """The list as JSON (same filters as the page, as query parameters)."""
    return f"{PREFIX}/api/runs"


def api_run_path(dag_id: str, run_id: str) -> str:
    """One run's detail as JSON."""
    return f"{PREFIX}/api/runs/{_part(dag_id)}/{_part(run_id)}"


def csv_path() -> str:
    """The filtered list as a CSV file."""
    return f"{PREFIX}/api/runs.csv"


def run_file_path(dag_id: str, run_id: str, kind: str, index: int) -> str:
    """Download of the ``index``-th file of ``kind`` (source, output, errors) listed in a run's summary."""
    if kind not in RUN_FILE_KINDS:
        raise ValueError(f"kind must be one of {RUN_FILE_KINDS}, not {kind!r}")
    return f"{run_detail_path(dag_id, run_id)}/files/{kind}/{index}"


def resubmit_path(dag_id: str, run_id: str) -> str:
    """POST here to start the Transaction Assistant for a deductions import run."""
    return f"{api_run_path(dag_id, run_id)}/resubmit"


def error_records_path(dag_id: str, run_id: str) -> str:
    """A run's error records on a page (filterable), from its error files."""
    return f"{run_detail_path(dag_id, run_id)}/errors"


def preview_path(dag_id: str, run_id: str) -> str:
    """A Dry Run's preview on a page: what a real run would have sent."""
    return f"{run_detail_path(dag_id, run_id)}/preview"


def discrepancies_path(dag_id: str, run_id: str) -> str:
    """A Hub Reconciliation run's discrepancies on a page (filter, select, Repair)."""
    return f"{run_detail_path(dag_id, run_id)}/discrepancies"


def repair_path(dag_id: str, run_id: str) -> str:
    """POST the chosen discrepancies here to repair them."""
    return f"{run_detail_path(dag_id, run_id)}/repair"


def transaction_assistant_path(dag_id: str, run_id: str) -> str:
    """The Transaction Assistant page of a deductions import run, or of one of its resubmissions."""
    return f"{run_detail_path(dag_id, run_id)}/transaction-assistant"


def trigger_path(dag_id: str, rerun_of: str | None = None, **values: str) -> str:
    """The hub's trigger form for ``dag_id``; with ``rerun_of``, prefilled with that run's params; with
    ``values``, those params prefilled (a Sync now on a paused DAG lands here)."""
    path = f"{PREFIX}/trigger/{_part(dag_id)}"
    query = {**({"rerun_of": rerun_of} if rerun_of else {}), **values}
    return path + (f"?{urlencode(query)}" if query else "")


def mappings_path() -> str:
    """The cross-reference tables the integrations translate codes with (read-only)."""
    return f"{PREFIX}/mappings"


def plans_path() -> str:
    """The Plan Summary: every iJoin plan, its last syncs, a waiting draft, Sync now."""
    return f"{PREFIX}/plans"


def plan_path(plan_id: str) -> str:
    """One plan's page: its participants with their synchronization status."""
    return f"{PREFIX}/plans/{_part(plan_id)}"


def plan_sync_path(plan_id: str) -> str:
    """POST here (form field ``kind``: plan or participants) to sync one plan now."""
    return f"{plan_path(plan_id)}/sync"


def airflow_dag_path(dag_id: str) -> str:
    """The Airflow UI's page of a DAG (its Docs button shows the runbook)."""
    return f"/dags/{_airflow_part(dag_id)}"


def airflow_task_instance_path(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """The Airflow 3 UI's page of one task instance (it opens on the task's logs)."""
    path = f"/dags/{_airflow_part(dag_id)}/runs/{_airflow_part(run_id)}/tasks/{_airflow_part(task_id)}"
    return path + (f"/mapped/{map_index}" if map_index >= 0 else "")


def airflow_required_action_path(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """The Airflow UI's Required Actions page of one task's human-in-the-loop request."""
    path = f"/dags/{_airflow_part(dag_id)}/runs/{_airflow_part(run_id)}/tasks/{_airflow_part(task_id)}"
    return f"{path}/required_actions" + (f"?map_index={map_index}" if map_index >= 0 else "")


def absolute_url(base_url: str, path: str) -> str:
    """``path`` under ``base_url`` (e.g. ``[api] base_url`` = ``https://airflow.example.com/airflow/``)."""
    return base_url.rstrip("/") + path
