"""What the Activity Monitor reads from Airflow's own records: the metadata DB, through Airflow's models.

Which DAGs are integrations (no list to keep up to date): a DAG **owned by** ``benefits-integrations``
(the owner every integration DAG's ``default_args`` set) whose ``summary`` task is one of the hub's own
operators (``benefits_hub.*``: the Run Summary operator, or an integration set's). A new DAG built from
the shared stages shows up by itself; helpers such as the draft review (a human approval with a
summary of its own) or the new-plan watch (no summary) do not. A DAG whose serialized form is gone
from the DB is judged by its owner alone.

Runs come from ``dag_run``, their Run Summaries from the ``summary`` task's ``return_value`` XCom, and
schedules from the ``dag`` table (``next_dagrun_create_after``; ``is_stale`` once its file is gone).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from benefits_hub.deductions.resubmit import RESUBMIT_DAG_ID as RESUBMIT_DAG_ID
from benefits_hub.ui.activity import RunFacts, ScheduleFacts
from benefits_hub.ui.detail import TaskFacts
from benefits_hub.ui.plans import REVIEW_DAG_ID

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SUMMARY_TASK_ID = "summary"
HUB_PACKAGE = "benefits_hub."
# Runs the hub starts on a person's behalf (a resubmission, a draft review): never run from a form.
STARTED_BY_THE_HUB = frozenset({RESUBMIT_DAG_ID, REVIEW_DAG_ID})
# The error records of an import, as PlanSource sent them: cut from its source file once, at the first
# visit of the Transaction Assistant (a source file may hold a million records; its errors, a few).
ERROR_COVERAGES = "transaction_assistant_records.jsonl"


@dataclass(frozen=True)
class IntegrationDag:
    dag_id: str
    display_name: str
    schedule: ScheduleFacts


def _owned_by_hub(owners: str | None) -> bool:
    from benefits_hub.operators.stages import OWNER

    return OWNER in {owner.strip() for owner in (owners or "").split(",")}


def _summary_is_the_hubs(dag: Any) -> bool:
    task = dag.task_dict.get(SUMMARY_TASK_ID)
    return task is not None and str(getattr(task, "_task_module", "")).startswith(HUB_PACKAGE)


def integration_dags(session: Session, dag_bag: Any) -> dict[str, IntegrationDag]:
    """Every integration DAG Airflow knows, stale ones included (see the module docstring)."""
    from airflow.models.dag import DagModel

    from benefits_hub.operators.stages import OWNER

    found: dict[str, IntegrationDag] = {}
    for model in session.scalars(select(DagModel).where(DagModel.owners.like(f"%{OWNER}%"))):
        if not _owned_by_hub(model.owners):
            continue
        dag = dag_bag.get_latest_version_of_dag(model.dag_id, session=session)
        if dag is not None and not _summary_is_the_hubs(dag):
            continue
        found[model.dag_id] = IntegrationDag(
            dag_id=model.dag_id,
            display_name=model.dag_display_name,
            schedule=ScheduleFacts(
                dag_id=model.dag_id,
                schedule=model.timetable_summary,
                next_run_at=model.next_dagrun_create_after,
                paused=bool(model.is_paused),
                deleted=bool(model.is_stale),
            ),
        )
    return found


def _summary_value(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _summaries(session: Session, dag_run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    from airflow.models.xcom import XComModel

    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(dag_run_ids), 500):  # bounded IN lists
        chunk = dag_run_ids[start : start + 500]
        rows = session.execute(
            select(XComModel.dag_run_id, XComModel.value).where(
                XComModel.dag_run_id.in_(chunk),
                XComModel.task_id == SUMMARY_TASK_ID,
                XComModel.key == "return_value",
                XComModel.map_index == -1,
            )
        )
        for dag_run_id, value in rows:
            summary = _summary_value(value)
            if summary is not None:
                found[dag_run_id] = summary
    return found


def held_reason(session: Session, dag_id: str, run_id: str, task_id: str) -> str | None:
    """Why a held delivery waits (the circuit breaker's words, pushed by its ``hold`` task)."""
    from airflow.models.xcom import XComModel

    value = session.scalar(
        select(XComModel.value).where(
            XComModel.dag_id == dag_id, XComModel.run_id == run_id,
            XComModel.task_id == task_id, XComModel.key == "hold",
        )
    )  # fmt: skip
    reason = (_summary_value(value) or {}).get("reason")
    return str(reason) if reason else None


def latest_integration_names(session: Session, dag_ids: Collection[str]) -> dict[str, str]:
    """Each DAG's integration name from its latest Run Summary that names one (any time ago)."""
    from airflow.models.xcom import XComModel

    if not dag_ids:
        return {}
    summaries = (
        select(XComModel.dag_id, func.max(XComModel.dag_run_id).label("dag_run_id"))
        .where(
            XComModel.dag_id.in_(list(dag_ids)),
            XComModel.task_id == SUMMARY_TASK_ID,
            XComModel.key == "return_value",
            XComModel.map_index == -1,
        )
        .group_by(XComModel.dag_id)
        .subquery()
    )
    rows = session.execute(
        select(XComModel.dag_id, XComModel.value)
        .join(summaries, XComModel.dag_run_id == summaries.c.dag_run_id)
        .where(XComModel.task_id == SUMMARY_TASK_ID, XComModel.key == "return_value")
    )
    names: dict[str, str] = {}
    for dag_id, value in rows:
        name = (_summary_value(value) or {}).get("integration_name")
        if name:
            names[dag_id] = str(name)
    return names


def _facts(run: Any, summary: dict[str, Any] | None, awaiting: tuple[str, int] | None = None) -> RunFacts:
    return RunFacts(
        awaiting=awaiting,
        dag_id=run.dag_id,
        run_id=run.run_id,
        state=str(getattr(run.state, "value", run.state)),
        run_type=str(getattr(run.run_type, "value", run.run_type)),
        triggering_user_name=run.triggering_user_name,
        queued_at=run.queued_at,
        start_date=run.start_date,
        end_date=run.end_date,
        run_after=run.run_after,
        summary=summary,
        run_name=(run.conf or {}).get("integration_run_name") if isinstance(run.conf, dict) else None,
    )


def awaiting_answers(session: Session, runs: Sequence[Any]) -> dict[tuple[str, str], tuple[str, int]]:
    """{(dag_id, run_id): (task_id, map_index)} of the unfinished ``runs`` with a human-in-the-loop
    request nobody has answered yet (a held delivery, a draft review): the task to answer."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance

    waiting = [run for run in runs if str(getattr(run.state, "value", run.state)) in ("queued", "running")]
    if not waiting:
        return {}
    query = (
        select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index)
        .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
        .where(
            TaskInstance.dag_id.in_({run.dag_id for run in waiting}),
            TaskInstance.run_id.in_({run.run_id for run in waiting}),
            HITLDetail.responded_at.is_(None),
        )
    )
    return {(row.dag_id, row.run_id): (row.task_id, row.map_index) for row in session.execute(query)}


def runs(
    session: Session,
    dag_ids: Collection[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    ended_since: datetime | None = None,
) -> list[RunFacts]:
    """The runs of ``dag_ids`` that started (or, not started yet, were queued) in [since, until), or
    that ended at or after ``ended_since``; each with its Run Summary."""
    from airflow.models.dagrun import DagRun

    if not dag_ids:
        return []
    happened = func.coalesce(DagRun.start_date, DagRun.queued_at, DagRun.run_after)
    query = select(DagRun).where(DagRun.dag_id.in_(list(dag_ids)))
    if ended_since is not None:
        query = query.where(DagRun.end_date >= ended_since)
    else:
        if since is not None:
            query = query.where(happened >= since)
        if until is not None:
            query = query.where(happened < until)
    dag_runs = list(session.scalars(query))
    summaries = _summaries(session, [run.id for run in dag_runs])
    answers = awaiting_answers(session, dag_runs)
    return [_facts(run, summaries.get(run.id), answers.get((run.dag_id, run.run_id))) for run in dag_runs]


def one_run(session: Session, dag_id: str, run_id: str) -> RunFacts | None:
    from airflow.models.dagrun import DagRun

    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is None:
        return None
    answer = awaiting_answers(session, [run]).get((run.dag_id, run.run_id))
    return _facts(run, _summaries(session, [run.id]).get(run.id), answer)


def tasks(session: Session, dag_id: str, run_id: str) -> list[TaskFacts]:
    """The run's task instances in the order they ran (those that never started last)."""
    from airflow.models.taskinstance import TaskInstance

    rows = session.execute(
        select(
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.state,
            TaskInstance.try_number,
            TaskInstance.start_date,
            TaskInstance.rendered_map_index,
        ).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
    ).all()
    far = datetime.max.replace(tzinfo=None)

    def order(row: Any) -> tuple[Any, ...]:
        started = row.start_date.replace(tzinfo=None) if row.start_date else far
        return (started, row.task_id, row.map_index)

    return [
        TaskFacts(
            task_id=row.task_id,
            map_index=row.map_index,
            state=str(getattr(row.state, "value", row.state)) if row.state else None,
            try_number=row.try_number or 0,
            label=row.rendered_map_index,
        )
        for row in sorted(rows, key=order)
    ]


def deductions_import_summary(run_id: str) -> tuple[str, dict[str, Any] | None]:
    """The deductions import DAG id and the import Run Summary kept under ``run_id`` in the staging
    area (the run manifest the Transaction Assistant reads), or None."""
    from benefits_hub.deductions.resubmit import IMPORT_DAG_ID
    from benefits_hub.operators.stages import RUN_MANIFEST
    from benefits_hub.staging import StagingArea

    manifest = StagingArea(IMPORT_DAG_ID, run_id).read_json(RUN_MANIFEST)
    summary = (manifest or {}).get("summary")
    return IMPORT_DAG_ID, summary if isinstance(summary, dict) else None


def staged_text_lines(path: str) -> Any:
    """A staged file's text, line by line (ObjectStoragePath: file:// here, s3:// on a cluster)."""
    from benefits_hub.staging import staging_base

    with staging_base(path).open("r", encoding="utf-8", newline="") as handle:
        yield from handle


def error_rows(path: str) -> list[dict[str, str]]:
    """The rows of one of a run's CSV files: an error file, a Dry Run's preview (masked when written);
    none if it is not kept."""
    import csv

    if not path or not is_staged(path) or not staged_exists(path):
        return []
    # Through the staging store's own connection (s3:// on a cluster), as every read of this page.
    return list(csv.DictReader(staged_text_lines(path)))


def staged_exists(path: str) -> bool:
    from benefits_hub.staging import staging_base

    return bool(staging_base(path).exists())


def is_staged(path: str) -> bool:
    """True when ``path`` lies in the staging area (a summary only lists staged files; checked anyway)."""
    from benefits_hub.staging import staging_base_url

    base = staging_base_url().rstrip("/") + "/"
    return path.startswith(base) and "/../" not in path


@dataclass
class AssistantFacts:
    """What the Transaction Assistant reads for one import run (the *root* of a resubmission chain)."""

    root_run_id: str
    root_summary: dict[str, Any]
    root_rows: list[dict[str, str]]
    later_rows: list[dict[str, str]]  # the resubmissions' error rows, oldest first
    ledger: Any  # benefits_hub.deductions.corrections.Ledger
    coverages: dict[str, dict[str, Any]]  # error record key -> the record as PlanSource sent it


def transaction_assistant(run_id: str, *, with_records: bool = True) -> AssistantFacts | None:
    """The import run that ``run_id`` (the import, a set, or a resubmission) belongs to, with its error
    records and ledger; None when it has no error records to work on. ``with_records=False`` leaves
    out the records as PlanSource sent them (the counts need none)."""
    from benefits_hub.deductions.corrections import read_ledger
    from benefits_hub.deductions.resubmit import find_root, read_error_rows
    from benefits_hub.operators.stages import RUN_MANIFEST
    from benefits_hub.staging import StagingArea

    found = find_root(run_id)
    if found is None:
        return None
    root, manifest = found
    summary = manifest.get("summary") or {}
    if not summary.get("error_files") or "extract" not in (manifest.get("stages") or {}):
        return None
    root_rows = read_error_rows(summary["error_files"][0])
    ledger = read_ledger(root)
    later: list[dict[str, str]] = []
    for resubmission in ledger.resubmissions:
        done = StagingArea(RESUBMIT_DAG_ID, resubmission).read_json(RUN_MANIFEST) or {}
        for path in (done.get("summary") or {}).get("error_files") or []:
            later.extend(read_error_rows(path))
    keys = {row["record_key"] for row in root_rows}
    source = manifest["stages"]["extract"]["files"]["source"]
    coverages = _error_coverages(root, source, keys) if with_records else {}
    return AssistantFacts(root.run_id, summary, root_rows, later, ledger, coverages)


def _error_coverages(root: Any, source: dict[str, Any], keys: set[str]) -> dict[str, dict[str, Any]]:
    from benefits_hub.deductions.rules import record_key
    from benefits_hub.staging import StagingArea

    cached = root.path(ERROR_COVERAGES)
    if not cached.exists():
        with root.records(ERROR_COVERAGES) as out:
            for page in StagingArea.read_records(source):
                for coverage in page.get("payroll_coverages") or []:
                    if record_key(coverage) in keys:
                        out.write(coverage)
    return {record_key(c): c for c in StagingArea.read_records({"path": str(cached)})}


def start_resubmit(
    session: Session,
    reference_id: str,
    corrections: dict[str, Any] | None,
    user_name: str,
    dismissals: dict[str, str] | None = None,
) -> Any:
    """Trigger the Transaction Assistant for ``reference_id`` on the person's behalf."""
    conf: dict[str, Any] = {"integration_reference_id": reference_id}
    if corrections:
        conf["corrections"] = corrections
    if dismissals:
        conf["dismissals"] = dismissals
    return start_on_behalf(session, RESUBMIT_DAG_ID, conf, user_name)


def start_repair(
    session: Session, dag_id: str, subjects: Sequence[str], reference_id: str, user_name: str
) -> Any:
    """Repair a reconciliation's discrepancies: repair DAG ``dag_id`` for exactly ``subjects`` (the
    employees, or for the iJoin syncs the plans)."""
    from benefits_hub.reconciliation.repair import REPAIR_PARAM

    conf = {REPAIR_PARAM[dag_id]: ",".join(subjects), "reconciliation_reference_id": reference_id}
    return start_on_behalf(session, dag_id, conf, user_name)


def start_on_behalf(session: Session, dag_id: str, conf: dict[str, Any], user_name: str) -> Any:
    """Trigger a helper DAG (no schedule) on a person's behalf. Turning it on has no other effect, so a
    run a person asked for never sits queued behind a paused DAG."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models.dag import DagModel
    from airflow.utils.types import DagRunTriggeredByType

    model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
    if model is not None and model.is_paused:
        model.is_paused = False
    return trigger_dag(
        dag_id,
        triggered_by=DagRunTriggeredByType.UI,
        triggering_user_name=user_name,
        conf=conf,
        session=session,
    )


def run_conf(session: Session, dag_id: str, run_id: str) -> dict[str, Any]:
    """The params a run was triggered with (its ``conf``)."""
    from airflow.models.dagrun import DagRun

    conf = session.scalar(select(DagRun.conf).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    return dict(conf) if isinstance(conf, dict) else {}


def run_names(session: Session, dag_id: str) -> list[str]:
    """The run names the runs of ``dag_id`` were given (for numbering a re-run)."""
    from airflow.models.dagrun import DagRun

    names = []
    for conf in session.scalars(select(DagRun.conf).where(DagRun.dag_id == dag_id)):
        if isinstance(conf, dict) and conf.get("integration_run_name"):
            names.append(str(conf["integration_run_name"]))
    return names


def is_paused(session: Session, dag_id: str) -> bool:
    from airflow.models.dag import DagModel

    return bool(session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == dag_id)))


# -- the Plan Summary -------------------------------------------------------------------------------
def recent_runs(
    session: Session, dag_ids: Sequence[str], limit: int = 200
) -> list[tuple[RunFacts, dict[str, Any]]]:
    """The newest ``limit`` runs of each of ``dag_ids``, each with its Run Summary and its conf."""
    from airflow.models.dagrun import DagRun

    found: list[Any] = []
    for dag_id in dag_ids:
        query = select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(limit)
        found += session.scalars(query)
    summaries = _summaries(session, [run.id for run in found])
    answers = awaiting_answers(session, found)  # a sync held by its circuit breaker
    return [
        (
            _facts(run, summaries.get(run.id), answers.get((run.dag_id, run.run_id))),
            run.conf if isinstance(run.conf, dict) else {},
        )
        for run in found
    ]


def waiting_reviews(session: Session) -> dict[str, str]:
    """{plan_id: run_id} of the draft reviews not finished yet (the newest per plan)."""
    from airflow.models.dagrun import DagRun

    query = (
        select(DagRun)
        .where(DagRun.dag_id == REVIEW_DAG_ID, DagRun.state.in_(("queued", "running")))
        .order_by(DagRun.id)
    )
    return {
        str(run.conf["plan_id"]): run.run_id
        for run in session.scalars(query)
        if isinstance(run.conf, dict) and run.conf.get("plan_id")
    }


def ijoin_plans() -> list[dict[str, Any]]:
    """iJoin's plan list (id, name, status, whether a draft exists), through the hub's iJoin hook."""
    from benefits_hub.hooks.ijoin import IJoinHook

    return IJoinHook().list_plans()


def ijoin_participants(plan_id: str) -> list[dict[str, Any]]:
    from benefits_hub.hooks.ijoin import IJoinHook

    return list(IJoinHook().list_participants(plan_id))


def mapping_tables() -> list[Any]:
    """Every cross-reference table, as the integrations read it (a table that cannot be read says why)."""
    import csv

    from benefits_hub.ui.render_mappings import MappingTable
    from benefits_hub.xref import CrossReferenceError, load_table, xref_dir

    tables = []
    for path in sorted(xref_dir().glob("*.csv")):
        key = "plansource_code" if path.stem == "deduction_code" else "hcm_code"
        try:
            load_table(path.stem, str(path.parent), key)  # the same checks as a run
        except CrossReferenceError as exc:
            tables.append(MappingTable(path.stem, (), (), problem=str(exc)))
            continue
        with path.open(encoding="utf-8-sig", newline="") as handle:
            lines = [
                tuple(v.strip() for v in row) for row in csv.reader(handle) if any(v.strip() for v in row)
            ]
        tables.append(MappingTable(path.stem, lines[0] if lines else (), tuple(lines[1:])))
    return tables
