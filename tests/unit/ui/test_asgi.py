"""The plugin mounts a lazy ASGI app: built at its first request, once, then every request delegated."""

from __future__ import annotations

import asyncio
from typing import Any

from benefits_hub.ui.asgi import LazyASGIApp

BUILT: list[Any] = []


def make_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"path": scope["path"]})

    BUILT.append(app)
    return app


def test_builds_on_first_request_only_and_delegates() -> None:
    BUILT.clear()
    lazy = LazyASGIApp(f"{__name__}:make_app")
    assert BUILT == []  # loading the plugin builds nothing
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {}

    for path in ("/a", "/b"):
        asyncio.run(lazy({"type": "http", "path": path}, receive, send))
    assert len(BUILT) == 1 and sent == [{"path": "/a"}, {"path": "/b"}]
