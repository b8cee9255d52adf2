"""The ASGI app the plugin mounts: it builds the Activity Monitor's FastAPI app at its first request.

Airflow loads plugins in every process (each task run, the scheduler, the DAG processor), but only the
api-server serves the page. Building the app there alone keeps the api-server's modules (auth, its
FastAPI app) out of every other process's start-up.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyASGIApp:
    """Delegates to the app that ``factory`` (``"package.module:function"``) makes at first use."""

    def __init__(self, factory: str) -> None:
        self.factory = factory
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    module, _, function = self.factory.partition(":")
                    self._app = getattr(importlib.import_module(module), function)()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
