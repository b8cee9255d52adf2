"""Read ahead: the next vendor page is fetched while the current one is staged.

A paged extract alternates two waits: on the vendor for a page, then on our own decoding and writing
of it. Reading one page ahead in a thread overlaps them, so a million-record extract takes about the
vendor's time rather than the vendor's plus ours (docs/performance.md). The pages still arrive in
order, at most ``depth`` of them are held in memory, and an error on either side stops both: the
vendor's error is raised where the page would have been, and a consumer that stops early (an error in
the stage, a refusal) ends the read-ahead before it asks for another page.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterable[T], depth: int = 2, name: str = "read-ahead") -> Iterator[T]:
    """``items`` in order, produced by a thread that keeps up to ``depth`` of them ready."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there as the page's error
            put(_Failed(exc))
            return
        put(_DONE)

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()
