"""Fanned-out stages: how items are spread over mapped tasks, and read back per item."""

from __future__ import annotations

import pytest

from benefits_hub.integration import Integration, StageRefused
from benefits_hub.models import StageResult
from benefits_hub.operators.stages import GROUP_KEY, _ungrouped, fan_out_groups


def test_up_to_the_task_count_each_item_has_its_own_task() -> None:
    assert fan_out_groups(["P1", "P2", "P3"], 16) == ["P1", "P2", "P3"]


def test_more_items_are_grouped_evenly_in_order_within_the_task_count() -> None:
    plans = [f"P{n:03d}" for n in range(100)]
    groups = fan_out_groups(plans, 16)
    assert len(groups) == 16 and all(isinstance(g, list) for g in groups)
    assert [p for g in groups for p in g] == plans
    assert sorted({len(g) for g in groups}) == [6, 7]


def test_a_stages_values_are_read_back_one_entry_per_item() -> None:
    one, two, three = ({"stage": "deliver", "details": {"plan_id": p}} for p in ("P1", "P2", "P3"))
    assert _ungrouped([{GROUP_KEY: [one, two]}, three]) == [one, two, three]


# -- a task working through its group of plans ----------------------------------------------------------

RAN: list[str] = []


class FlakyPlans(Integration):
    """P2's extract fails (how is set by the test); the others extract."""

    integration_name = "Flaky plans"
    failure: type[Exception] = RuntimeError

    def extract(self) -> StageResult:
        RAN.append(str(self.run.item))
        if self.run.item == "P2":
            raise self.failure("the vendor answered 503")
        return StageResult(stage="extract", details={"plan_id": self.run.item, "status": "Ready"})


class _TI:
    def __init__(self, try_number: int, max_tries: int) -> None:
        self.try_number, self.max_tries, self.map_index = try_number, max_tries, 0

        self.pushed: dict[str, object] = {}

    def xcom_pull(self, **_: object) -> None:
        return None

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


class _DagRun:
    dag_id, run_id, run_type = "flaky", "manual__1", "manual"
    triggering_user_name = "clerk"
    start_date = run_after = data_interval_start = data_interval_end = None


def _run_group(monkeypatch: pytest.MonkeyPatch, tmp_path, try_number: int, max_tries: int) -> dict:
    from benefits_hub.operators.stages import IntegrationStageOperator

    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__STAGING_URL", tmp_path.as_uri())
    RAN.clear()
    operator = IntegrationStageOperator(
        task_id="extract", integration=f"{__name__}:FlakyPlans", item=["P1", "P2", "P3"]
    )
    context = {"ti": _TI(try_number, max_tries), "dag_run": _DagRun(), "params": {}}
    return operator.execute(context)  # type: ignore[arg-type]


def test_on_the_last_try_a_failing_plan_is_carried_as_failed_and_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    value = _run_group(monkeypatch, tmp_path, try_number=1, max_tries=0)
    entries = {e["details"]["plan_id"]: e for e in value[GROUP_KEY]}
    assert RAN == ["P1", "P2", "P3"]
    assert entries["P1"]["details"]["status"] == entries["P3"]["details"]["status"] == "Ready"
    failed = entries["P2"]
    assert failed["details"]["status"] == "Failed" and failed["counters"] == {"error_records": 1}
    assert (
        "The extract stage of P2 failed: RuntimeError: the vendor answered 503"
        in failed["details"]["messages"]
    )


def test_with_retries_left_the_group_is_retried_after_every_plan_had_its_turn(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    with pytest.raises(RuntimeError):
        _run_group(monkeypatch, tmp_path, try_number=1, max_tries=2)
    assert RAN == ["P1", "P2", "P3"]


def test_a_refusal_is_never_retried_it_fails_its_plan_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setattr(FlakyPlans, "failure", StageRefused)
    value = _run_group(monkeypatch, tmp_path, try_number=1, max_tries=2)
    [failed] = [e for e in value[GROUP_KEY] if e["details"]["status"] == "Failed"]
    assert failed["details"]["plan_id"] == "P2"


def test_a_single_plans_failure_is_raised_with_its_reason_kept_for_the_run_summary(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from benefits_hub.operators.stages import FAILURE_XCOM_KEY, IntegrationStageOperator

    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__STAGING_URL", tmp_path.as_uri())
    operator = IntegrationStageOperator(task_id="extract", integration=f"{__name__}:FlakyPlans", item="P2")
    ti = _TI(try_number=1, max_tries=2)
    with pytest.raises(RuntimeError):
        operator.execute({"ti": ti, "dag_run": _DagRun(), "params": {}})  # type: ignore[arg-type]
    assert ti.pushed[FAILURE_XCOM_KEY] == "RuntimeError: the vendor answered 503"


def test_a_group_reads_each_upstream_xcom_once() -> None:
    from benefits_hub.operators.stages import remembered_pulls

    reads: list[dict[str, object]] = []

    class TaskInstance:
        def xcom_pull(self, **kwargs: object) -> object:
            reads.append(kwargs)
            return {"read": len(reads)}

    pull = remembered_pulls(TaskInstance())
    assert pull(task_ids="extract", map_indexes=3) == pull(map_indexes=3, task_ids="extract") == {"read": 1}
    assert pull(task_ids="extract", map_indexes=3, key="failure") == {"read": 2}
    assert len(reads) == 2
