"""Records the HTTP requests the vendor APIs receive, so a benchmark can replay exactly the same traffic
with a bare HTTP client (the "floor": the cost of moving the same bytes with nothing else).

An ASGI middleware around both sandbox APIs; one :class:`Recorder` per sandbox process, switched on and
off over HTTP (``POST /sandbox/record {"path": ...}``, ``DELETE /sandbox/record``) on either API.
Each request becomes one JSON line: api, method, path, query, the headers a replay needs, the body.
Off by default: then the middleware only passes requests through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

# What a replay must send again to be the same request (auth, body type); nothing else is kept.
REPLAYED_HEADERS = (b"authorization", b"content-type", b"x-api-key")
CONTROL_PATH = "/sandbox/record"

Scope = dict[str, Any]


class Recorder:
    def __init__(self) -> None:
        self._sink: IO[str] | None = None

    @property
    def on(self) -> bool:
        return self._sink is not None

    def start(self, path: Path) -> None:
        self.stop()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._sink = path.open("a", encoding="utf-8")

    def stop(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def write(self, api: str, scope: Scope, body: bytes) -> None:
        if self._sink is None:
            return
        headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in REPLAYED_HEADERS}
        entry = {
            "api": api,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode("latin-1"),
            "headers": headers,
            "body": body.decode("utf-8", errors="surrogateescape"),
        }
        self._sink.write(json.dumps(entry, ensure_ascii=False) + "\n")


class RecordingMiddleware:
    """Wraps one API app; the shared ``recorder`` holds the on/off switch and the file."""

    def __init__(self, app: Any, api: str, recorder: Recorder) -> None:
        self.app = app
        self.api = api
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == CONTROL_PATH:
            await self._control(scope, receive, send)
            return
        if not self.recorder.on:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        recorded = False

        async def receive_and_keep() -> dict[str, Any]:
            nonlocal recorded
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and not recorded:
                    recorded = True
                    self.recorder.write(self.api, scope, b"".join(chunks))
            return message

        await self.app(scope, receive_and_keep, send)
        if not recorded:  # the app answered without reading the body (a GET, or a refusal)
            self.recorder.write(self.api, scope, b"".join(chunks))

    async def _control(self, scope: Scope, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST":
            self.recorder.start(Path(json.loads(body)["path"]))
        elif scope["method"] == "DELETE":
            self.recorder.stop()
        answer = json.dumps({"recording": self.recorder.on}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})
