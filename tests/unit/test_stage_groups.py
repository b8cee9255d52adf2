"""Fanned-out stages: how items are spread over mapped tasks, and read back per item."""

from __future__ import annotations

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
