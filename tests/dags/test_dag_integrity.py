"""Every DAG file imports fast, with no network or DB at parse time, and carries what on-call needs."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflow.providers.standard.operators.hitl import HITLOperator

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="session")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(REPO / "dags"))


def test_no_import_errors(dag_bag) -> None:
    assert dag_bag.import_errors == {}


def test_every_dag_file_is_a_dag_named_after_it(dag_bag) -> None:
    assert DAG_FILES, "no DAG files found"
    assert {p.stem for p in DAG_FILES} == set(dag_bag.dag_ids)


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_dag_has_a_display_name_in_clerk_words(dag_bag, dag_file: Path) -> None:
    dag = dag_bag.dags[dag_file.stem]
    # The UI lists and searches DAGs by display name: "demographic", "deductions", "participant"...
    assert dag.dag_display_name != dag.dag_id and "_" not in dag.dag_display_name


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_helpers_started_for_a_person_are_never_paused_at_creation(dag_bag, dag_file: Path) -> None:
    dag = dag_bag.dags[dag_file.stem]
    if type(dag.timetable).__name__ == "NullTimetable":  # schedule=None: only ever started by someone
        assert dag.is_paused_upon_creation is False, "a run started on a person's behalf would wait forever"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_runbooks_of_integrations_with_params_point_at_the_hubs_trigger_form(dag_bag, dag_file: Path) -> None:
    dag = dag_bag.dags[dag_file.stem]
    triggered_by_people = set(dag.params) - {"integration_run_name"} and "review" not in dag.tags
    if triggered_by_people and "transaction-assistant" not in dag.tags:
        assert "Run an Integration" in dag.doc_md and f"/activity-monitor/trigger/{dag.dag_id}" in dag.doc_md


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_dag_has_owner_tags_retries_doc(dag_bag, dag_file: Path) -> None:
    dag = dag_bag.dags[dag_file.stem]
    assert dag.tags, "tags missing"
    assert dag.doc_md and "Statuses" in dag.doc_md and "First three things to check" in dag.doc_md
    # One run at a time, so two runs can never deliver the same data twice. A review DAG is the
    # exception: each draft waits for its reviewer in a run of its own, and they answer in any order.
    assert dag.max_active_runs == 1 or "review" in dag.tags
    assert dag.catchup is False
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", f"{task.task_id} has no owner"
        # A summary reports what happened; a person's approval is asked once: neither is retried.
        if not task.task_id.endswith("summary") and not isinstance(task, HITLOperator):
            assert task.retries >= 1, f"{task.task_id} has no retries"
            assert task.retry_exponential_backoff, f"{task.task_id} does not back off"


STAGES = ["validate", "extract", "transform", "deliver", "summary"]


def _stage_groups(dag) -> list[str]:
    """'' for an integration DAG; each member's task group for an integration set; none for a watcher
    (a DAG that only starts integration runs) or a maintenance DAG (housekeeping of the hub itself)."""
    if "watcher" in dag.tags or "review" in dag.tags or "maintenance" in dag.tags:
        return []
    if "integration-set" not in dag.tags:
        return [""]
    return sorted({t.task_id.split(".")[0] + "." for t in dag.tasks if "." in t.task_id})


def _stage_task(dag, prefix: str, stage: str):
    """The task of a stage: ``prefix + stage``, or inside a mapped per-item group (``per_item.extract``)."""
    if prefix + stage in dag.task_dict:
        return dag.get_task(prefix + stage)
    [task] = [t for t in dag.tasks if t.task_id.startswith(prefix) and t.task_id.endswith("." + stage)]
    return task


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_five_stages_in_order(dag_bag, dag_file: Path) -> None:
    dag = dag_bag.dags[dag_file.stem]
    groups = _stage_groups(dag)
    if "review" in dag.tags:
        assert {t.task_id for t in dag.tasks} == {"validate", "review", "activate", "summary"}
        assert "activate" in dag.get_task("review").downstream_task_ids
        return
    if "watcher" in dag.tags:
        assert all("trigger" in type(t).__name__.lower() or t.task_id.startswith("find") for t in dag.tasks)
        return
    if "maintenance" in dag.tags:
        # Housekeeping, not an integration: it moves no records, so it has no stages and no summary.
        assert dag.tasks and not {t.task_id for t in dag.tasks} & set(STAGES)
        return
    assert groups
    for prefix in groups:
        for upstream, downstream in itertools.pairwise(STAGES):
            later = _stage_task(dag, prefix, downstream)
            assert later in _stage_task(dag, prefix, upstream).get_flat_relatives(upstream=False)
        assert _stage_task(dag, prefix, "summary").trigger_rule == "all_done"
    assert dag.get_task("summary").trigger_rule == "all_done"
    assert not dag.get_task("summary").downstream_task_ids, "nothing may run after summary"


# The integrations a mass change could hurt (terminations, payroll deductions, participants' rates) hold
# it for a person; the Plan Sync's line-up changes wait as drafts for review instead, and a repair sends
# what a person chose.
HELD = {
    "plansource_hcm_demographic_export", "plansource_deductions_import", "plansource_benefits_set",
    "ijoin_participant_sync",
}  # fmt: skip


def test_the_circuit_breaker_holds_every_transform_before_any_deliver(dag_bag) -> None:
    for dag_id, dag in dag_bag.dags.items():
        holds = [t for t in dag.tasks if t.task_id.split(".")[-1] == "hold"]
        assert bool(holds) == (dag_id in HELD), dag_id
        for prefix in _stage_groups(dag) if holds else []:
            hold = dag.get_task(prefix + "hold")
            assert isinstance(hold, HITLOperator) and hold.retries == 0
            assert _stage_task(dag, prefix, "transform").task_id in hold.upstream_task_ids
            assert _stage_task(dag, prefix, "deliver").task_id in hold.downstream_task_ids


def test_sets_abort_on_failure(dag_bag) -> None:
    for dag in dag_bag.dags.values():
        groups = _stage_groups(dag) if "integration-set" in dag.tags else []
        for earlier, later in itertools.pairwise(groups):
            # The next member starts only if the earlier member's summary succeeded.
            assert later + "validate" in dag.get_task(earlier + "summary").downstream_task_ids
            assert dag.get_task(later + "validate").trigger_rule == "all_success"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_params_have_title_description_and_type(dag_bag, dag_file: Path) -> None:
    dag = dag_bag.dags[dag_file.stem]
    for name, param in dag.params.items():
        schema = param.schema
        assert schema.get("title"), f"{name} has no title"
        assert param.description, f"{name} has no description"
        assert schema.get("type"), f"{name} has no type"
        # A scheduled DAG's defaults must be valid, or the scheduler cannot create runs.
        param.resolve()


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_parses_fast_without_network_or_database(dag_file: Path, tmp_path: Path) -> None:
    """Parse in a fresh interpreter where any socket or sqlite connect fails loudly."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import socket, sqlite3, time, runpy, sys\n"
        "def refuse(*a, **k):\n"
        "    raise RuntimeError('network or database access at parse time')\n"
        "import airflow.sdk  # Airflow itself is not what we time\n"
        "socket.socket.connect = refuse\n"
        "sqlite3.connect = refuse\n"
        # CPU time of this process: the DAG file's own cost. Wall time on a loaded 2-core CI machine
        # (the other test worker running Airflow) measures the neighbours as much as the parse.
        "start = time.process_time()\n"
        f"runpy.run_path({str(dag_file)!r})\n"
        "print(time.process_time() - start)\n"
    )
    out = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    seconds = float(out.stdout.strip().splitlines()[-1])
    assert seconds < 1.0, f"{dag_file.name} took {seconds:.2f}s to parse"


def test_socket_guard_really_refuses() -> None:
    """The parse probe above would be worthless if its guard did not bite."""
    original = socket.socket.connect

    def refuse(*_a, **_k):
        raise RuntimeError("refused")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError):
            socket.create_connection(("127.0.0.1", 9), timeout=0.1)
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]
    assert time.perf_counter() > 0


def _scheduled_integration(dag) -> bool:
    # Maintenance DAGs (tagged so) are not integrations; a DAG without a schedule is started by people.
    return dag.timetable.can_be_scheduled and "maintenance" not in dag.tags


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_scheduled_integrations_have_a_deadline(dag_bag, dag_file: Path) -> None:
    """A scheduled integration raises "Deadline missed" through the shared ``finish_within`` helper
    when a run overruns, and its runbook states that deadline."""
    from airflow.sdk import DeadlineReference

    from benefits_hub.deadlines import deadline_missed, describe

    dag = dag_bag.dags[dag_file.stem]
    alerts = list(dag.deadline or [])
    if _scheduled_integration(dag):
        assert alerts, f"{dag.dag_id} is scheduled but has no deadline (deadline=finish_within(...))"
    for alert in alerts:
        assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
        assert alert.callback.path == f"{deadline_missed.__module__}.{deadline_missed.__qualname__}"
        assert f"**{describe(alert.interval)}**" in dag.doc_md, "the runbook does not state the deadline"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_vendor_stages_take_a_slot_of_their_vendors_pool(dag_bag, dag_file: Path) -> None:
    """Extract and deliver call the vendor: each takes a slot of that vendor's pool, so concurrent runs
    and workers never exceed the calls a vendor allows; the other stages stay in the default pool."""
    from benefits_hub.operators.stages import IJOIN_API_POOL, PLANSOURCE_API_POOL

    dag = dag_bag.dags[dag_file.stem]
    vendor_pool = {"plansource": PLANSOURCE_API_POOL, "ijoin": IJOIN_API_POOL}.get(dag.dag_id.split("_")[0])
    if vendor_pool is None or dag.dag_id == "plansource_deductions_resubmit":
        return  # maintenance, or the Transaction Assistant (staged files and the HCM only)
    for prefix in _stage_groups(dag):
        for stage in STAGES:
            expected = vendor_pool if stage in ("extract", "deliver") else "default_pool"
            assert _stage_task(dag, prefix, stage).pool == expected, f"{prefix}{stage}"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_every_stage_has_an_execution_timeout(dag_bag, dag_file: Path) -> None:
    """A stage stuck on a silent vendor fails and is retried instead of holding its slot for ever. The
    one exception is a person's review, which waits on the triggerer for as long as people take."""
    dag = dag_bag.dags[dag_file.stem]
    for task in dag.tasks:
        if "review" in dag.tags and task.task_id == "review":
            continue
        if task.task_id.rsplit(".", 1)[-1] in (*STAGES, "summary"):
            assert task.execution_timeout is not None, task.task_id


def test_the_overlap_guard_knows_every_set_and_its_members(dag_bag) -> None:
    """benefits_hub.exclusive keeps a set and a standalone run of one integration apart: it must list
    exactly the integrations each set DAG runs, and every set DAG."""
    from benefits_hub.exclusive import INTEGRATION_SETS, competitors

    sets = {d.dag_id: d for d in dag_bag.dags.values() if "integration-set" in d.tags}
    assert set(INTEGRATION_SETS) == set(sets)
    for dag_id, dag in sets.items():
        members = {getattr(t, "integration_id", None) for t in dag.tasks} - {None}
        assert members == set(INTEGRATION_SETS[dag_id])
        for member in members:
            assert competitors(member, member) == [dag_id]  # a standalone run checks the set
            assert competitors(member, dag_id) == [member]  # the set's member checks the standalone DAG
