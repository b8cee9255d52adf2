"""Real local receivers for notifications: an SMTP server (aiosmtpd) and an HTTP webhook receiver.

Both bind to 127.0.0.1 on a free port, keep what they receive in memory, and stop when their
context manager exits.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    raw: str
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("html", "plain"))
        return part.get_content() if part is not None else ""


@dataclass
class MailServer:
    host: str
    port: int
    received: list[Mail] = field(default_factory=list)

    def connection_json(self, from_email: str = "benefits-hub@example.test") -> str:
        """An Airflow ``smtp`` connection to this server (no TLS, no login), for ``AIRFLOW_CONN_*``."""
        extra = {"from_email": from_email, "disable_tls": True, "disable_ssl": True, "timeout": 5}
        return json.dumps({"conn_type": "smtp", "host": self.host, "port": self.port, "extra": extra})


@contextmanager
def smtp_server() -> Iterator[MailServer]:
    from aiosmtpd.controller import Controller

    server = MailServer("127.0.0.1", free_port())

    class Keep:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            raw = envelope.original_content or envelope.content
            server.received.append(
                Mail(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    raw=raw.decode("utf-8", errors="replace"),
                    message=message_from_bytes(raw, policy=policy.default),  # type: ignore[arg-type]
                )
            )
            return "250 Message accepted"

    controller = Controller(Keep(), hostname=server.host, port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass
class WebhookReceiver:
    url: str
    received: list[Post] = field(default_factory=list)

    def connection_json(self) -> str:
        """An Airflow ``http`` connection whose host is the whole webhook URL (as with Slack)."""
        return json.dumps({"conn_type": "http", "host": self.url})


@contextmanager
def webhook_receiver(path: str = "/services/T000/B000/hub") -> Iterator[WebhookReceiver]:
    port = free_port()
    receiver = WebhookReceiver(f"http://127.0.0.1:{port}{path}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            receiver.received.append(Post(self.path, dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            pass  # keep the test output quiet

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
