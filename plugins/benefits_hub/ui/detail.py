"""One run's detail, as pure functions: its Run Summary, files, task logs and Transaction Assistant.

The files a person may download are exactly those the run's summary lists (:func:`summary_files`): the
download route looks a file up by kind and position there, never by a path the browser sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from benefits_hub.models import RunSummary
from benefits_hub.reconciliation import ijoin_rules  # noqa: F401 - its kinds' titles, for counter_label
from benefits_hub.reconciliation.rules import counter_label
from benefits_hub.ui import urls
from benefits_hub.ui.activity import ActivityRow, shown_text


class RunFile(BaseModel):
    kind: str  # source, output, errors
    index: int
    name: str
    download_path: str


@dataclass(frozen=True)
class TaskFacts:
    """One task instance of the run, as Airflow's ``task_instance`` row records it."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    label: str | None = None  # a mapped task's label (``map_index_template``), e.g. the plan id


class TaskLog(BaseModel):
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    label: str | None = None
    log_path: str  # the Airflow UI's page of this task instance, relative to the api-server's root


class ResubmitOffer(BaseModel):
    """The Transaction Assistant for a deductions import run that has error records."""

    reference_id: str
    error_records: int | None = None
    post_path: str
    page_path: str = ""  # the Transaction Assistant page
    open_records: int | None = None  # still open across every resubmission (None: not known)
    total_records: int | None = None
    resubmissions: list[str] = Field(default_factory=list)


class ParamShown(BaseModel):
    name: str
    title: str
    value: str


class RunDetail(BaseModel):
    row: ActivityRow
    dag_id: str
    run_id: str
    summary: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)
    failure_reason: str | None = None
    files: list[RunFile] = Field(default_factory=list)
    tasks: list[TaskLog] = Field(default_factory=list)
    resubmit: ResubmitOffer | None = None
    params: list[ParamShown] = Field(default_factory=list)  # what the run was triggered with
    rerun_path: str | None = None  # the hub's trigger form, prefilled with this run's params
    trigger_path: str | None = None
    waiting_on_pause: bool = False  # queued, and its DAG is paused: it will not start
    waiting_reason: str | None = None  # why it waits for approval (a held delivery's thresholds)


def summary_files(summary: dict[str, Any] | None) -> dict[str, list[str]]:
    """The staged files a Run Summary lists, by kind. A set's members' error files count as its own."""
    summary = summary or {}
    errors = [str(p) for p in summary.get("error_files") or []]
    for member in summary.get("members") or []:
        if isinstance(member, dict):
            errors.extend(str(p) for p in member.get("error_files") or [])
    output = summary.get("output_file")
    outputs = summary.get("output_files") or ([output] if output else [])
    return {
        "source": [str(p) for p in summary.get("source_files") or []],
        "output": [str(p) for p in outputs],
        "errors": errors,
    }


def file_for(summary: dict[str, Any] | None, kind: str, index: int) -> str | None:
    """The path of the ``index``-th file of ``kind`` in the summary, or None."""
    files = summary_files(summary).get(kind) or []
    return files[index] if 0 <= index < len(files) else None


def file_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


# What a staged file is, for the person reading the run page ("plan P0004 payload sent to iJoin"),
# by its name within the run's staging folder.
FILE_TITLES = {
    "participants.jsonl": "participants read from the recordkeeper",
    "payload.jsonl": "payload sent to iJoin",
    "payload.json": "payload sent to iJoin",
    "recordkeeper.json": "plan data read from the recordkeeper",
    "ijoin_before.json": "iJoin's plan before the sync",
    "error_file.csv": "error records",
    "census.csv": "census file sent to PlanSource's SFTP",
    "delivered.csv": "changes sent to PlanSource",
    "preview.csv": "dry run preview: what a real run would send (nothing was sent)",
    "discrepancies.csv": "discrepancies found (SSNs and birth dates masked)",
}


def file_title(path: str) -> str:
    """A file's name in words: per-plan files say their plan; others their role, else their name."""
    parts = path.rstrip("/").split("/")
    name = parts[-1]
    title = FILE_TITLES.get(name, name)
    if len(parts) >= 3 and parts[-3] == "plans":
        return f"plan {parts[-2]} {title}"
    return title if title == name else f"{title} ({name})"


def run_files(dag_id: str, run_id: str, summary: dict[str, Any] | None) -> list[RunFile]:
    return [
        RunFile(
            kind=kind,
            index=index,
            name=file_title(path),
            download_path=urls.run_file_path(dag_id, run_id, kind, index),
        )
        for kind, paths in summary_files(summary).items()
        for index, path in enumerate(paths)
    ]


def task_logs(dag_id: str, run_id: str, tasks: list[TaskFacts]) -> list[TaskLog]:
    return [
        TaskLog(
            task_id=task.task_id,
            map_index=task.map_index,
            state=task.state,
            try_number=task.try_number,
            label=task.label,
            log_path=urls.airflow_task_instance_path(dag_id, run_id, task.task_id, task.map_index),
        )
        for task in tasks
    ]


def resubmit_offer(
    dag_id: str, run_id: str, import_dag_id: str, import_summary: dict[str, Any] | None
) -> ResubmitOffer | None:
    """Offered when this run left a deductions import Run Summary with an error file: exactly what the
    Transaction Assistant accepts. The summary is this run's when the run is the import itself, or an
    integration set whose import member it is (its ``process_name``); another DAG's run that happens
    to share the run id (two schedules firing at the same hour) gets no offer."""
    if not import_summary or not import_summary.get("error_files"):
        return None
    if (import_summary.get("process_name") or import_dag_id) != dag_id:
        return None
    errors = import_summary.get("errors")
    return ResubmitOffer(
        reference_id=str(import_summary.get("integration_reference_id") or run_id),
        error_records=errors if isinstance(errors, int) else None,
        post_path=urls.resubmit_path(dag_id, run_id),
        page_path=urls.transaction_assistant_path(dag_id, run_id),
    )


def shown_params(conf: dict[str, Any], titles: dict[str, str]) -> list[ParamShown]:
    """The run's params in the trigger form's order and words; empty ones say so."""
    shown = []
    for name in [*titles, *(k for k in conf if k not in titles)]:
        value = conf.get(name)
        if isinstance(value, bool):
            text = "Yes" if value else "No"
        elif value is None or value == "":
            text = ""
        elif isinstance(value, dict | list):
            import json

            text = json.dumps(value, sort_keys=True)
        else:
            text = str(value)
        shown.append(ParamShown(name=name, title=titles.get(name, name), value=text))
    return shown


def run_detail(
    row: ActivityRow,
    run_id: str,
    summary: dict[str, Any] | None,
    tasks: list[TaskFacts],
    import_dag_id: str,
    import_summary: dict[str, Any] | None,
) -> RunDetail:
    warnings = [shown_text(w) for w in (summary or {}).get("warnings") or []]
    reason = (summary or {}).get("failure_reason")
    return RunDetail(
        row=row,
        dag_id=row.dag_id,
        run_id=run_id,
        summary=summary or None,
        warnings=warnings,
        failure_reason=shown_text(reason) if reason else None,
        files=run_files(row.dag_id, run_id, summary),
        tasks=task_logs(row.dag_id, run_id, tasks),
        resubmit=resubmit_offer(row.dag_id, run_id, import_dag_id, import_summary),
    )


# The Run Summary's own fields first, in the order the model lists them; per-integration counters after.
SUMMARY_ORDER: tuple[str, ...] = tuple(RunSummary.model_fields)


def summary_items(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """The summary's fields in reading order: the standard ones, then the integration's own."""
    known = [(key, summary[key]) for key in SUMMARY_ORDER if key in summary]
    extra = sorted(((k, v) for k, v in summary.items() if k not in SUMMARY_ORDER), key=lambda kv: kv[0])
    return known + extra


# Where the field's name alone would leave a clerk guessing.
FIELD_LABELS = {
    "already_delivered": "Already delivered by an earlier attempt of this run",
    "test_employees_skipped": "Test employees skipped",
    "error_rows": "Error rows (a record can have several)",
}


def field_label(key: str) -> str:
    """``records_processed`` → ``Records processed``."""
    if key in FIELD_LABELS:
        return FIELD_LABELS[key]
    if reconciliation := counter_label(key):
        return reconciliation
    text = key.replace("_", " ").strip()
    return text[:1].upper() + text[1:]
