"""The shared stage operators: every integration DAG is five of these in a row.

``IntegrationStageOperator`` runs one stage (validate, extract, transform, deliver) of an integration
named by its import path (imported when the task runs, never at DAG parse time).
``RunSummaryOperator`` runs whatever happened upstream (``all_done``), pushes the Run Summary to XCom,
sends the notifications its rules ask for (:mod:`benefits_hub.notifications`), and then fails the run
if the status is Completed with Errors or Failed (DESIGN.md section 8: the run's state comes from its
leaf task, and nothing that succeeds may run after it).
"""

from __future__ import annotations

import gc
import importlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, TriggerRule
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from benefits_hub.hooks.reach import VendorUnreachable
from benefits_hub.integration import STAGES, Integration, RunContext, StageRefused
from benefits_hub.lease import DeliverLease, LeaseRefused, holder_name, lease_ttl
from benefits_hub.models import RunStatus, RunSummary, StageResult
from benefits_hub.notifications import notify_run_summary
from benefits_hub.params import ParamError
from benefits_hub.pii import redact
from benefits_hub.staging import StagedFileDamaged, StagingArea, StagingFull

if TYPE_CHECKING:
    from airflow.sdk import Context

FAILURE_XCOM_KEY = "stage_failure"
# A mapped task that handles a group of items (plans) returns {GROUP_KEY: [one result per item]}.
GROUP_KEY = "group"
DEFAULT_FAN_OUT_TASKS = 16
RUN_MANIFEST = "run_manifest.json"
STATE_VARIABLE_PREFIX = "benefits_hub"


def load_integration(path: str) -> type[Integration]:
    """``package.module:ClassName`` to the class."""
    module_name, _, class_name = path.partition(":")
    integration = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(integration, type) and issubclass(integration, Integration)):
        raise TypeError(f"{path} is not an Integration")
    return integration


def _state_key(dag_id: str, key: str) -> str:
    return f"{STATE_VARIABLE_PREFIX}.{dag_id}.{key}"


def read_state(dag_id: str, key: str) -> Any:
    """Another integration's hub state (e.g. the export's watermark, read by the import)."""
    from airflow.sdk import Variable

    return Variable.get(_state_key(dag_id, key), default=None)


def build_run_context(
    context: Context,
    upstream: Sequence[str],
    log: Any = None,
    *,
    task_ids: dict[str, str] | None = None,
    integration_id: str | None = None,
    params_key: str | None = None,
    item: str | None = None,
    group_index: int | None = None,
    pull: Callable[..., Any] | None = None,
) -> RunContext:
    """The stage's view of its run, from Airflow's task context and the upstream stages' XComs.

    ``group_index``: the item's place in its mapped task's group of items (:func:`fan_out_groups`),
    whose upstream results come as one :data:`GROUP_KEY` value with an entry per item. ``pull``: how
    XComs are read (:func:`remembered_pulls` for a group, whose items read the same values).

    ``task_ids`` names each stage's task (a set's member sits in a task group; a fanned-out stage in a
    mapped group). In an integration set the member's stages run as the member
    integration (``integration_id``: its state and staging folder) and take its own params
    (``params_key``: the member's object in the set's params).
    """
    from airflow.sdk import Variable

    dag_run = context["dag_run"]
    ti = context["ti"]
    dag_id = integration_id or dag_run.dag_id
    params = dict(context["params"])
    if params_key is not None:
        member = params.get(params_key) or {}
        params = {"process_name": dag_run.dag_id, **dict(member)}
    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    triggered_by = dag_run.triggering_user_name or ("scheduler" if run_type == "scheduled" else "unknown")
    results: dict[str, StageResult] = {}
    failures: dict[str, str] = {}
    pull = pull or ti.xcom_pull
    map_index = getattr(ti, "map_index", -1)
    mapped = map_index is not None and map_index >= 0
    for stage in upstream:
        # A mapped stage reads its own item's upstream results; validate never fans out.
        same_item = {"map_indexes": map_index} if mapped and stage != "validate" else {}
        task_id = (task_ids or {}).get(stage, stage)
        value = pull(task_ids=task_id, **same_item)
        if isinstance(value, dict) and GROUP_KEY in value:  # this task's own group: its item's entry
            entries = value[GROUP_KEY]
            value = entries[group_index or 0] if 0 <= (group_index or 0) < len(entries) else None
        if isinstance(value, dict):
            results[stage] = StageResult.model_validate(value)
        elif value is not None and not isinstance(value, str | bytes):  # the summary: every item's
            items = [StageResult.model_validate(v) for v in _ungrouped(value) if v]
            if items:
                results[stage] = StageResult.combine(stage, items)
        if stage not in results:
            reason = pull(task_ids=task_id, key=FAILURE_XCOM_KEY, **same_item)
            if isinstance(reason, str):
                failures[stage] = reason
            elif reason:
                failures[stage] = "; ".join(str(r) for r in reason if r)
    if "deliver" in upstream:  # the circuit breaker's answer, when the run has a hold before deliver
        hold_id = (task_ids or {}).get("hold", "hold")
        hold = pull(task_ids=hold_id) or pull(task_ids=hold_id, key="hold")
        if "deliver" not in results and "deliver" not in failures:
            refused = pull(task_ids=hold_id, key=FAILURE_XCOM_KEY)
            if isinstance(refused, str):
                failures["deliver"] = refused
    else:
        hold = None
    return RunContext(
        dag_id=dag_id,
        run_id=dag_run.run_id,
        run_type=run_type,
        params=params,
        run_start=dag_run.start_date or dag_run.run_after or datetime.now(UTC),
        triggered_by=triggered_by,
        data_interval_start=dag_run.data_interval_start,
        data_interval_end=dag_run.data_interval_end,
        staging=StagingArea(dag_id, dag_run.run_id),
        results=results,
        failures=failures,
        state_get=lambda key: Variable.get(_state_key(dag_id, key), default=None),
        state_set=lambda key, value: Variable.set(_state_key(dag_id, key), value),
        item=item,
        hold=hold if isinstance(hold, dict) else None,
        **({"log": log} if log is not None else {}),
    )


def remembered_pulls(ti: Any) -> Callable[..., Any]:
    """``ti.xcom_pull``, each value read once: a grouped task's items read the same upstream values (one
    group value per stage), and each read is a round trip to Airflow's API (some 10 ms)."""
    seen: dict[tuple[tuple[str, Any], ...], Any] = {}

    def pull(**kwargs: Any) -> Any:
        key = tuple(sorted(kwargs.items()))
        if key not in seen:
            seen[key] = ti.xcom_pull(**kwargs)
        return seen[key]

    return pull


def _ungrouped(values: Sequence[Any]) -> list[Any]:
    """Every item's result from a mapped stage's values, a group's entries taken one by one."""
    flat: list[Any] = []
    for value in values:
        if isinstance(value, dict) and GROUP_KEY in value:
            flat.extend(value[GROUP_KEY])
        else:
            flat.append(value)
    return flat


def fan_out_tasks() -> int:
    """``[benefits_hub] fan_out_tasks``: at most this many mapped tasks per fanned-out stage."""
    from airflow.configuration import conf

    return max(conf.getint("benefits_hub", "fan_out_tasks", fallback=DEFAULT_FAN_OUT_TASKS), 1)


def fan_out_groups(items: Sequence[str], tasks: int) -> list[str | list[str]]:
    """The items spread over at most ``tasks`` mapped tasks, in order: up to ``tasks`` items each get a
    task of their own (the item itself); more are grouped evenly (a list per task, sizes differing by
    one at most). 100 plans at 16 tasks: 16 tasks of 6 or 7 plans, 48 task processes rather than 300."""
    if len(items) <= tasks:
        return list(items)
    base, extra = divmod(len(items), tasks)
    groups: list[str | list[str]] = []
    start = 0
    for index in range(tasks):
        size = base + (1 if index < extra else 0)
        group = list(items[start : start + size])
        groups.append(group if len(group) > 1 else group[0])  # alone: a task of its own, as above
        start += size
    return groups


class _ItemLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The task's log with each line naming the item (plan) it is about, in a group's task."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['item']}] {msg}", kwargs  # type: ignore[index]


def member_args(operator: Any) -> dict[str, Any]:
    explicit = getattr(operator, "stage_task_ids", None)
    prefix = operator.task_id.rsplit(".", 1)[0] + "." if "." in operator.task_id else ""
    return {
        "task_ids": explicit or {stage: prefix + stage for stage in (*STAGES, "hold", "summary")},
        "integration_id": operator.integration_id,
        "params_key": operator.params_key,
    }


# How long a stage may run (``execution_timeout``). The data stages stream up to millions of records;
# ``[benefits_hub] stage_timeout_minutes`` sets theirs. Validate and summary only read small files.
DEFAULT_STAGE_TIMEOUT = timedelta(hours=4)
SHORT_STAGE_TIMEOUT = timedelta(minutes=15)


def stage_timeout(stage: str) -> timedelta:
    if stage in ("validate", "summary"):
        return SHORT_STAGE_TIMEOUT
    from airflow.configuration import conf

    minutes = conf.getint(
        "benefits_hub", "stage_timeout_minutes", fallback=int(DEFAULT_STAGE_TIMEOUT.total_seconds() // 60)
    )
    return timedelta(minutes=max(minutes, 1))


@contextmanager
def long_lived_frozen() -> Iterator[None]:
    """The objects alive when a stage starts (Airflow's and the parsed DAGs': 700,000 in `airflow dags
    test`) set aside from the garbage collector until the stage ends, then given back (so garbage among
    them is still collected, after the stage).

    A stage that holds batches of records (25,000 deductions, a page of coverages) moves enough objects
    into the oldest generation to set off a full collection every few batches, and each one walked all
    of Airflow's objects as well as the stage's own: 0.4 s each, 14 of them (5.5 s) in the stages of a
    million-record import. Frozen, a full collection walks only what the stage made (0.5 s in all).

    A process that holds frozen objects already is left as it is: Airflow's Local and Celery executors
    freeze before they fork a worker (copy-on-write), and unfreezing here would undo that for them."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_stage(integration: Integration, stage: str, try_number: int | None, log: Any) -> StageResult:
    """Run one stage; a ``deliver`` only while it holds its integration's deliver lease (one writer
    per destination, however many attempts are alive: benefits_hub.lease)."""
    run = integration.run
    if stage != "deliver" or run.staging is None:
        return getattr(integration, stage)()
    ttl = lease_ttl()
    name = f"deliver-{run.item}.json" if run.item else "deliver.json"
    lease = DeliverLease(
        run.staging.state_root / "leases" / name,
        holder_name(run.run_id, try_number),
        ttl=ttl,
        wait=2 * ttl,
        log=log,
    )
    with lease.held():
        return integration.deliver()


def refuse_overlap(integration: Integration, own_dag_id: str) -> None:
    """Refuse (before anything moves) while a set or standalone run of this integration is running."""
    from benefits_hub.exclusive import INTEGRATION_SETS, overlap_refusal, running_competitor
    from benefits_hub.ui.urls import list_path

    holder = running_competitor(integration.run.dag_id, own_dag_id)
    if holder is None:
        return
    name = f"A run of the integration set {holder}" if holder in INTEGRATION_SETS else (
        f"A run of the {integration.integration_name} on its own"
    )  # fmt: skip
    raise StageRefused(
        overlap_refusal(integration.integration_name, holder, name, list_path(integration=holder))
    )


class IntegrationStageOperator(BaseOperator):
    """Runs one stage of an integration and returns its :class:`StageResult` (a small manifest)."""

    # ``item`` comes from a mapped task group (the plan a fanned-out stage handles): resolved per task.
    template_fields = ("item",)
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        integration: str,
        stage: str | None = None,
        integration_id: str | None = None,
        params_key: str | None = None,
        item: str | None = None,
        stage_task_ids: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        # A stage stuck on a vendor that stopped answering mid-stream fails (and is retried) rather
        # than hold its pool slot and the run forever.
        kwargs.setdefault("execution_timeout", stage_timeout(stage or kwargs["task_id"].rsplit(".", 1)[-1]))
        super().__init__(**kwargs)
        self.item = item
        self.stage_task_ids = stage_task_ids
        self.integration = integration
        self.integration_id = integration_id
        self.params_key = params_key
        self.stage = stage or self.task_id.rsplit(".", 1)[-1]
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {self.stage!r}")

    def execute(self, context: Context) -> dict[str, Any]:
        if isinstance(self.item, list | tuple):
            return self._execute_group(context, list(self.item))
        return self._run_item(context, self.item, self.log).model_dump(mode="json")

    def _execute_group(self, context: Context, items: list[str]) -> dict[str, Any]:
        """One stage for each item of this task's group, in turn (the plans of a grouped fan-out).

        An item that fails does not hold the others: it is carried on as failed, with its reason (an
        error row, and its outcome in the Run Summary), and later stages pass it by. An unexpected
        error (a vendor's 5xx, say) is raised once every item had its turn while the task has
        retries left, so Airflow retries the group; what an earlier try delivered is replayed from
        the delivery journal, not sent again.
        """
        entries: list[dict[str, Any] | None] = []
        retry: BaseException | None = None
        ti = context["ti"]
        pull = remembered_pulls(ti)
        for index, item in enumerate(items):
            log = _ItemLog(self.log, {"item": item})
            log.info("%s stage of %s (%d of %d in this task)", self.stage, item, index + 1, len(items))
            try:
                result = self._run_item(context, item, log, group_index=index, pull=pull)
            except _ItemCarried as carried:
                result = carried.result
            except Exception as exc:
                message = _failure_words(exc)
                log.error("%s stage failed: %s", self.stage, message)
                if not isinstance(exc, _NOT_RETRIED) and ti.try_number <= getattr(ti, "max_tries", 0):
                    retry = retry or exc
                result = self._failed_item(context, item, message, index, pull)
            entries.append(result.model_dump(mode="json"))
        if retry is not None:
            raise retry
        return {GROUP_KEY: entries}

    def _failed_item(
        self, context: Context, item: str, message: str, index: int, pull: Callable[..., Any]
    ) -> StageResult:
        """An item whose stage failed: one error row naming it and why, its outcome Failed."""
        from benefits_hub.integration import record_error
        from benefits_hub.models import ErrorRow

        run = build_run_context(
            context, (), self.log, item=item, group_index=index, pull=pull, **member_args(self)
        )
        assert run.staging is not None
        with run.error_file(f"{self.stage}-{item}") as errors:
            reason = f"The {self.stage} stage of {item} failed: {message}"
            record_error(
                errors,
                ErrorRow(record_key=item, field="plan", rule="hub:stage_failed", reason=reason),
                self.stage,
            )
        return StageResult(
            stage=self.stage,
            counters={"error_records": errors.records},
            files={"errors": errors.manifest},
            details={"plan_id": item, "status": "Failed", "messages": [reason], "carried": True},
        )

    def _run_item(
        self,
        context: Context,
        item: str | None,
        log: Any,
        group_index: int | None = None,
        pull: Callable[..., Any] | None = None,
    ) -> StageResult:
        upstream = STAGES[: STAGES.index(self.stage)]
        run = build_run_context(
            context, upstream, log, item=item, group_index=group_index, pull=pull, **member_args(self)
        )
        if group_index is not None:
            carried = [r for r in run.results.values() if r.details.get("carried")]
            if carried:  # failed at an earlier stage of this group: passed on as it is
                # Its error row and count belong to the stage it failed at: counted once.
                passed_on = {"stage": self.stage, "counters": {}, "files": {}, "warnings": []}
                raise _ItemCarried(carried[-1].model_copy(update=passed_on))
        integration = load_integration(self.integration)(run)
        log.info("%s: %s stage of run %s", integration.integration_name, self.stage, run.run_id)
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        try:
            if self.stage == "validate":
                refuse_overlap(integration, context["dag_run"].dag_id)
            with long_lived_frozen():
                result = run_stage(integration, self.stage, context["ti"].try_number, log)
        except (StageRefused, ParamError, StagedFileDamaged, VendorUnreachable) as exc:
            # A person must act (a damaged staged file reads the same on every try): retrying would
            # only repeat the refusal. An unreachable vendor was already retried for its whole bound.
            message = redact(str(exc), limit=1000)  # the hub's own words: kept whole
            if group_index is not None:
                raise
            context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value=message)
            log.error("Run refused at %s: %s", self.stage, message)
            raise AirflowFailException(message) from None
        except (StagingFull, LeaseRefused) as exc:  # the hub's words; retried: space or the lease may free
            message = redact(str(exc), limit=1000)
            if group_index is None:
                context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value=message)
            log.error("%s", message)
            raise
        except Exception as exc:
            if group_index is None:
                context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value=_failure_words(exc))
            raise
        # The stage's own time and CPU (less Airflow's task start-up around it): on-call and `make bench`.
        result.details["cpu_seconds"] = round(time.process_time() - cpu_started, 3)
        result.details["stage_seconds"] = round(time.perf_counter() - wall_started, 3)
        for name, value in sorted(result.counters.items()):
            log.info("  %-28s %s", name, value)
        log.info(
            "  %-28s %.2f s (CPU %.2f s)",
            "stage time",
            result.details["stage_seconds"],
            result.details["cpu_seconds"],
        )
        for warning in result.warnings:
            log.warning("  warning: %s", warning)
        return result


class _ItemCarried(Exception):
    """An item of a group that failed at an earlier stage: its failed result goes on unchanged."""

    def __init__(self, result: StageResult) -> None:
        super().__init__(result.stage)
        self.result = result


# Refusals a retry would only repeat: an item of a group that meets one is carried on as failed.
_NOT_RETRIED = (StageRefused, ParamError, StagedFileDamaged, VendorUnreachable)


def _failure_words(exc: BaseException) -> str:
    if isinstance(exc, (*_NOT_RETRIED, StagingFull, LeaseRefused)):
        return redact(str(exc), limit=1000)
    return f"{type(exc).__name__}: {redact(str(exc))}"


class RunSummaryOperator(BaseOperator):
    """Builds, logs and pushes the Run Summary; then fails the run if its status says so."""

    ui_color = "#fdf1d6"

    def __init__(
        self,
        *,
        integration: str,
        integration_id: str | None = None,
        params_key: str | None = None,
        stage_task_ids: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        kwargs.setdefault("retries", 0)
        kwargs.setdefault("execution_timeout", stage_timeout("summary"))
        # The summary is what tells people; if it breaks before it could, this still does.
        kwargs.setdefault("on_failure_callback", notify_without_summary)
        super().__init__(**kwargs)
        self.stage_task_ids = stage_task_ids
        self.integration = integration
        self.integration_id = integration_id
        self.params_key = params_key

    def execute(self, context: Context) -> dict[str, Any]:
        run = build_run_context(context, STAGES, self.log, **member_args(self))
        if self.params_key is not None and not run.results and not run.failures:
            # A member of a set that never started: an earlier member stopped the set.
            raise AirflowSkipException("Not run: an earlier member of the integration set stopped it.")
        integration = load_integration(self.integration)(run)
        summary, error_parts = integration.build_summary()
        if error_parts and run.staging is not None:
            with run.staging.errors("error_file.csv") as merged:
                StagingArea.copy_error_rows(error_parts, merged)
            summary.error_files = [merged.manifest.path] if merged.manifest else []
        integration.after_summary(summary)
        payload = summary.as_xcom()
        if run.staging is not None:
            # The run manifest beside its files: what the Transaction Assistant (and people) read later.
            stages = {name: result.model_dump(mode="json") for name, result in run.results.items()}
            run.staging.write_json(RUN_MANIFEST, {"summary": payload, "stages": stages})
        self.log.info("Run Summary\n%s", format_summary(summary))
        for outcome in summary.outcomes:
            if outcome.get("status") not in (None, "Successful"):
                # One line per item that failed or warned, for whoever reads the log at 3 a.m.
                messages = "; ".join(str(m) for m in outcome.get("messages") or []) or "no reason given"
                self.log.warning(
                    "plan %s: %s: %s", outcome.get("plan_id"), outcome.get("status"), redact(messages)
                )
        # Pushed before any failure below, so a failed run still has its summary.
        context["ti"].xcom_push(key="return_value", value=payload)
        # Before the run is failed below: whoever the rules name is told; never changes the outcome.
        notify_run_summary(
            payload, dag_id=context["dag_run"].dag_id, integration_id=run.dag_id, logger=self.log
        )
        if summary.status.fails_the_run:
            reason = summary.failure_reason or f"{summary.errors} record(s) with errors; see the error file."
            self.log.error("%s ended %s: %s", summary.integration_name, summary.status, reason)
            raise RunEndedFailed(1)
        return payload


def notify_without_summary(context: Context) -> None:
    """The summary task failed: when it had not pushed its Run Summary (it broke, or was killed, before
    it could notify), tell whoever the rules name for Failed runs, with the reason it failed."""
    ti = context["ti"]
    if ti.xcom_pull(task_ids=ti.task_id, key="return_value"):
        return  # pushed, and notified, before the run was failed (Completed with Errors, Failed)
    dag_run = context["dag_run"]
    exception = context.get("exception")
    reason = f"{type(exception).__name__}: {redact(str(exception))}" if exception else ""
    task = context["task"]
    integration_id = getattr(task, "integration_id", None) or dag_run.dag_id
    try:
        name = load_integration(task.integration).integration_name
    except Exception:  # the callback must tell someone even if the integration cannot be loaded
        name = integration_id
    payload = {
        "integration_name": name,
        "integration_reference_id": dag_run.run_id,
        "status": RunStatus.FAILED.value,
        "failure_reason": (
            f"The run failed before its Run Summary was written ({reason or 'no reason given'}). "
            "Its task logs say what happened; re-run it once fixed."
        ),
        "errors": 0,
        "warnings": [],
        "error_files": [],
    }
    notify_run_summary(payload, dag_id=dag_run.dag_id, integration_id=integration_id)


class RunEndedFailed(SystemExit):
    """Fails the summary task (so the run fails in Airflow's terms, and a set stops) with no traceback.

    The Task SDK's runner logs every other exception, AirflowFailException included, with its Python
    traceback; it logs a SystemExit as one line ("Task exited"). The summary already said everything,
    in the line above it. The summary task has no retries, so this ends it failed.
    """


OWNER = "benefits-integrations"


def on_behalf_dag_args(
    *, finish_in: timedelta = timedelta(minutes=30), **default_args: Any
) -> dict[str, Any]:
    """The DAG arguments of a DAG the hub starts only on a person's behalf (a resubmission, a repair; its
    file says ``schedule=None``): never paused at creation (its runs must never wait on a paused DAG, and
    turning it on decides nothing), one run at a time, and a deadline of ``finish_in`` from queued."""
    from benefits_hub.deadlines import finish_within

    return {
        "is_paused_upon_creation": False,
        "deadline": finish_within(finish_in),
        "start_date": datetime(2026, 1, 1),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": integration_default_args(**default_args),
    }


def integration_default_args(
    *,
    retries: int = 3,
    retry_delay: timedelta = timedelta(minutes=1),
    max_retry_delay: timedelta = timedelta(minutes=15),
) -> dict[str, Any]:
    """The ``default_args`` every integration DAG shares: owner, retries with exponential backoff."""
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": max_retry_delay,
    }


FAN_OUT_GROUP = "per_item"
# Airflow pools cap the concurrent calls to each vendor, whatever the number of workers and runs
# (created by docker/airflow-init.sh, which `make` runs too). Only the stages that talk to the vendor
# take a slot; validate, transform and summary work on staged files and the databases.
PLANSOURCE_API_POOL = "plansource_api"
IJOIN_API_POOL = "ijoin_api"
VENDOR_STAGES = ("extract", "deliver")


def _pool(stage: str, vendor_pool: str | None) -> dict[str, str]:
    return {"pool": vendor_pool} if vendor_pool and stage in VENDOR_STAGES else {}


def fanned_out_stages(
    integration: str, group_id: str = FAN_OUT_GROUP, *, vendor_pool: str | None = None, hold: bool = False
) -> tuple[Any, Any, Any]:
    """validate; extract → transform → deliver once per item validate chose; summary.

    The per-item stages are a mapped task group (dynamic task mapping): up to ``[benefits_hub]
    fan_out_tasks`` items (plans) each run their own three tasks; more are grouped evenly over that
    many (each task works through its group's items, one failing never holding the others), so 100
    plans cost 48 task processes rather than 300. Returns (validate, the mapped group, summary).

    With ``hold``, the circuit breaker's one ``hold`` task (:mod:`benefits_hub.operators.hold`) sits
    between every item's transform and every item's deliver: it measures the whole run's changes, so
    no plan is delivered before the run's change set has passed (or been approved).
    """
    from airflow.sdk import task, task_group

    task_ids = {"validate": "validate", **{s: f"{group_id}.{s}" for s in ("extract", "transform", "deliver")}}
    validate = IntegrationStageOperator(task_id="validate", integration=integration)
    breaker = None
    if hold:
        from benefits_hub.operators.hold import HOLD_TASK, delivery_hold

        task_ids["hold"] = HOLD_TASK
        breaker = delivery_hold(integration, stage_task_ids=task_ids)

    @task_group(group_id=group_id)
    def per_item(item: str) -> None:
        extract, transform, deliver = (
            IntegrationStageOperator(
                task_id=stage,
                integration=integration,
                item=item,
                stage_task_ids=task_ids,
                # The grid and the logs name each mapped task by its item (a plan id), not [0]...[n];
                # a task with a group of plans by its first and last.
                map_index_template=(
                    "{{ task.item if task.item is string else task.item[0] ~ ' to ' ~ task.item[-1] }}"
                ),
                **_pool(stage, vendor_pool),
            )
            for stage in ("extract", "transform", "deliver")
        )
        if breaker is None:
            extract >> transform >> deliver
        else:  # outside the mapped group: it waits for every item's transform, every deliver for it
            extract >> transform >> breaker >> deliver

    # Airflow maps only over a task's return value: this step hands validate's chosen items on.
    @task(task_id="fan_out")
    def fan_out(validated: dict[str, Any]) -> list[str | list[str]]:
        return fan_out_groups(list(validated["details"].get("fan_out") or []), fan_out_tasks())

    items = per_item.expand(item=fan_out(validate.output))
    summary = RunSummaryOperator(task_id="summary", integration=integration, stage_task_ids=task_ids)
    return validate, items, summary


def integration_stages(
    integration: str, *, vendor_pool: str | None = None, hold: bool = False, **member: Any
) -> tuple[BaseOperator, ...]:
    """The five stage tasks of ``integration`` (validate, extract, transform, deliver, summary); with
    ``hold``, six: the circuit breaker's ``hold`` (:mod:`benefits_hub.operators.hold`) before deliver.

    ``vendor_pool`` is the Airflow pool of the vendor its extract and deliver stages call.
    ``member`` (``integration_id``, ``params_key``) runs them as a member of an integration set.
    The caller chains them, so the DAG file shows the procedure.
    """
    stages = [
        IntegrationStageOperator(
            task_id=stage, integration=integration, **_pool(stage, vendor_pool), **member
        )
        for stage in STAGES
    ]
    if hold:
        from benefits_hub.operators.hold import delivery_hold

        stages.insert(STAGES.index("deliver"), delivery_hold(integration, **member))
    return (*stages, RunSummaryOperator(task_id="summary", integration=integration, **member))


def format_summary(summary: RunSummary) -> str:
    """The Run Summary as an aligned two-column table, for task logs and the demo command."""
    rows = summary.as_xcom()
    width = max(len(k) for k in rows)
    lines = []
    for key, value in rows.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) if value else "-"
        lines.append(f"  {key.ljust(width)}  {'-' if value in (None, '') else value}")
    return "\n".join(lines)
