"""The fault tools themselves: the sandbox's fault switch (held answers, method/skip targeting, tokens
that expire mid-run), the TCP fault proxy, and the vendor hook's read timeout from its connection."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hub_sandbox.client import SandboxClient
from hub_sandbox.faultproxy import FaultProxy
from tests.faults.harness import admin, arm, request_count, running_sandbox, set_connection

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_sandbox(tmp_path_factory.mktemp("fault-tools"), employees=20) as box:
        yield box


@pytest.fixture
def api(sandbox: Any) -> Iterator[SandboxClient]:
    client = SandboxClient(sandbox)
    yield client
    client.reset()


def test_a_held_answer_comes_after_the_write_landed(sandbox: Any, api: SandboxClient) -> None:
    path = "/subscriber/E000001"
    arm(sandbox.plansource_url, status=None, stall=30, method="PUT", path_prefix=f"/admin/v2{path}")
    with pytest.raises(requests.ReadTimeout):
        requests.put(
            f"{api.base}/admin/v2{path}?is_custom_id=true",
            json={"city": "Springfield"},
            headers={"Authorization": f"Bearer {api.token}"},
            timeout=0.5,
        )
    # The caller gave up, yet PlanSource applied the change and logged the call.
    assert admin(sandbox.plansource_url, "GET", "/subscribers/E000001")["city"] == "Springfield"
    stats = admin(sandbox.plansource_url, "GET", "/stats")
    assert request_count(stats, "PUT", f"/admin/v2{path}") == 1
    admin(sandbox.plansource_url, "DELETE", "/faults")  # releases the held answer
    assert api.call("GET", f"{path}?is_custom_id=true").status_code == 200


def test_a_fault_can_let_some_calls_through_and_catch_one_method(sandbox: Any, api: SandboxClient) -> None:
    path = "/subscriber/E000011"
    arm(sandbox.plansource_url, status=503, method="GET", skip=1, count=1, path_prefix=f"/admin/v2{path}")
    put = api.call("PUT", f"{path}?is_custom_id=true", json={"city": "Shelbyville"})
    codes = [api.call("GET", f"{path}?is_custom_id=true").status_code for _ in range(3)]
    assert put.status_code == 200 and codes == [200, 503, 200]


def test_tokens_expire_after_the_next_calls(sandbox: Any, api: SandboxClient) -> None:
    admin(sandbox.plansource_url, "POST", "/expire_tokens", json={"after_requests": 2})
    path = "/subscriber/E000003?is_custom_id=true"
    answers = [api.call("GET", path) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 401]
    assert answers[2].json()["errors"]["message"] == "Signature has expired"
    api.token = api.new_token()
    assert api.call("GET", path).status_code == 200


def test_the_hook_times_out_as_its_connection_says_and_asks_again(sandbox: Any, api: SandboxClient) -> None:
    from benefits_hub.hooks.plansource import PlanSourceHook

    saved = os.environ["AIRFLOW_CONN_PLANSOURCE_API"]
    set_connection("plansource_api", extra={"timeout": 1})
    try:
        hook = PlanSourceHook()
        assert hook.timeout == 1.0
        path = "/admin/v2/subscriber/E000004"
        arm(sandbox.plansource_url, status=None, stall=30, method="GET", path_prefix=path)
        before = request_count(admin(sandbox.plansource_url, "GET", "/stats"), "GET", path)
        assert hook.get_subscriber("E000004")["employee_number"] == "E000004"
        after = request_count(admin(sandbox.plansource_url, "GET", "/stats"), "GET", path)
        assert after - before == 2  # the stalled call, then the retried one
    finally:
        os.environ["AIRFLOW_CONN_PLANSOURCE_API"] = saved
    assert PlanSourceHook().timeout == 60.0  # no extra: the default


class _EchoServer:
    """Answers every chunk with the same bytes, and counts what it received."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                self.received += len(data)
                conn.sendall(data)


def _exchange(port: int, payload: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_the_proxy_cuts_a_connection_after_n_bytes_once(tmp_path: Path) -> None:
    echo = _EchoServer()
    with FaultProxy(echo.port) as proxy:
        assert _exchange(proxy.port, b"x" * 5000) == b"x" * 5000
        proxy.drop_after(1000)
        before = echo.received
        try:
            echoed: bytes | None = _exchange(proxy.port, b"y" * 200_000)
        except OSError:  # reset by the proxy, mid-transfer
            echoed = None
        assert echoed is None or len(echoed) < 200_000
        assert proxy.stats.drops == [1000] and echo.received - before <= 1000
        assert _exchange(proxy.port, b"z" * 5000) == b"z" * 5000  # armed once: the next one passes
    echo.sock.close()


def test_the_proxy_holds_an_answer_until_released() -> None:
    echo = _EchoServer()
    with FaultProxy(echo.port) as proxy:
        proxy.stall(30)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5) as conn:
            conn.sendall(b"ping")
            with pytest.raises(TimeoutError):
                conn.recv(10)  # the server answered; the proxy holds it
            assert echo.received == 4
            proxy.clear()
            conn.settimeout(5)
            assert conn.recv(10) == b"ping"
        assert proxy.stats.stalls == 1
    echo.sock.close()
