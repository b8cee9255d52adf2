from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from benefits_hub.readahead import read_ahead


def test_items_arrive_in_order_and_all_of_them() -> None:
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))


def test_the_producers_error_is_raised_where_its_item_would_be() -> None:
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("PlanSource did not answer")

    seen = []
    with pytest.raises(ConnectionError, match="did not answer"):
        for page in read_ahead(pages()):
            seen.append(page)
    assert seen == [1, 2]


def test_at_most_depth_items_are_fetched_ahead_of_the_consumer() -> None:
    fetched = []

    def pages() -> Iterator[int]:
        for n in range(100):
            fetched.append(n)
            yield n

    stream = read_ahead(pages(), depth=2)
    assert next(stream) == 0
    time.sleep(0.3)  # let the producer run as far ahead as it may
    # 0 is consumed; 1 and 2 wait in the queue, 3 is fetched and waiting to be put: no more.
    assert len(fetched) <= 4
    stream.close()


def test_a_consumer_that_stops_early_ends_the_producer() -> None:
    def pages() -> Iterator[int]:
        n = 0
        while True:
            yield n
            n += 1

    before = threading.active_count()
    for page in read_ahead(pages(), depth=1, name="test-read-ahead"):
        if page == 5:
            break
    # The generator is closed on break; its finally joined the producer thread.
    assert not any(t.name == "test-read-ahead" for t in threading.enumerate())
    assert threading.active_count() <= before
