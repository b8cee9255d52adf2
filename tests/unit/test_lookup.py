"""The join lookups: a merge over key-ordered streams, falling back to a disk index when order breaks."""

from __future__ import annotations

import pytest

from benefits_hub.lookup import DiskLookup, OrderedLookup, OutOfOrder, join_lookup, merge_latest


def test_a_merge_join_answers_ascending_keys_and_the_later_value_of_a_repeated_key() -> None:
    items = [("E1", "a"), ("E3", "b"), ("E3", "c"), ("E5", "d")]
    with OrderedLookup(lambda: iter(items)) as lookup:
        assert [lookup.get(k) for k in ("E0", "E1", "E2", "E3", "E3", "E5", "E9")] == [
            None, "a", None, "c", "c", "d", None,
        ]  # fmt: skip
        assert not lookup.fell_back


def test_a_key_asked_out_of_order_is_still_answered_from_a_disk_index() -> None:
    items = [("E1", "a"), ("E3", "b"), ("E5", "c")]
    with OrderedLookup(lambda: iter(items)) as lookup:
        assert lookup.get("E5") == "c"
        assert lookup.get("E1") == "a"  # went back: answered all the same
        assert lookup.fell_back
        assert lookup.get("E3") == "b"


def test_a_stream_found_out_of_order_stops_the_join_rather_than_answer_wrongly() -> None:
    items = [("E1", "a"), ("E7", "b"), ("E3", "c"), ("E9", "d")]
    with OrderedLookup(lambda: iter(items)) as lookup, pytest.raises(OutOfOrder):
        for key in ("E1", "E8"):
            lookup.get(key)


def test_a_side_not_known_to_be_ordered_is_indexed_and_every_key_found() -> None:
    items = [("E1", "a"), ("E7", "b"), ("E3", "c"), ("E9", "d"), ("E3", "e")]
    with join_lookup(lambda: iter(items), ordered=False) as lookup:
        answers = {k: lookup.get(k) for k in ("E1", "E3", "E7", "E9", "E2")}
    assert answers == {"E1": "a", "E3": "e", "E7": "b", "E9": "d", "E2": None}


def test_staged_records_say_whether_they_ascended_by_the_key(tmp_path) -> None:
    from benefits_hub.staging import StagingArea

    staging = StagingArea("dag", "run", base_url=tmp_path.as_uri())
    with staging.records("a.jsonl", order_key="n") as ordered:
        ordered.write_many([{"n": "E1"}, {"n": "E1"}, {"n": "E2"}])
    with staging.records("b.jsonl", order_key="n") as unordered:
        unordered.write_many([{"n": "E2"}, {"n": "E1"}])
    with staging.records("c.jsonl") as unchecked:
        unchecked.write({"n": "E1"})
    assert ordered.manifest.ordered_by == "n"
    assert unordered.manifest.ordered_by is None
    assert unchecked.manifest.ordered_by is None
    assert [r["n"] for r in staging.read_records(ordered.manifest)] == ["E1", "E1", "E2"]


def test_merge_latest_keeps_each_key_once_with_the_last_streams_value() -> None:
    snapshot = [("E1", "s1"), ("E2", "s2"), ("E4", "s4")]
    changes = [("E2", "c2"), ("E3", "c3")]
    later = [("E4", "l4")]
    assert list(merge_latest([snapshot, changes, later])) == [
        ("E1", "s1"), ("E2", "c2"), ("E3", "c3"), ("E4", "l4"),
    ]  # fmt: skip


def test_merge_latest_refuses_an_input_out_of_order() -> None:
    with pytest.raises(OutOfOrder):
        list(merge_latest([[("E2", 1), ("E1", 2)]]))


def test_byte_order_is_the_order_of_the_disk_index_too() -> None:
    """Python's string order (what the merge compares) is SQLite's BINARY order (what the index sorts)."""
    keys = ["e10", "E-10", "E10", "É1", "E1", "e-1", "E_1"]
    with DiskLookup() as index:
        index.load((k, 1) for k in keys)
        assert [k for k, _ in index.items()] == sorted(keys)


def test_keys_added_alone_count_once_each_as_added_ones_do() -> None:
    with DiskLookup() as people:
        people.add_keys(["E1", "E2"])
        people.add_keys({"E2", "E3"})
        people.add("E4")
        assert len(people) == 4
        assert people.get("E1") == people.get("E4") == 1 and people.get("E5") is None
