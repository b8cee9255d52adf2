"""A TCP proxy on loopback that puts network faults between the hub and a sandbox server.

Point a connection (the SFTP port, an HTTP port) at the proxy instead of the server; it passes every
byte through until a fault is armed:

- ``drop_after(n)``: the next connection that sends more than ``n`` bytes towards the server is cut
  right there (both sides reset), as when a link drops in the middle of an upload;
- ``stall(seconds)``: the next chunk the server sends back is held that long, as when a vendor stops
  answering mid-transfer (the caller's read timeout runs out first).

The proxy runs its own event loop in a daemon thread, so a test arms faults from its own thread while a
DAG run (in the test process or in a subprocess) talks through it. Test tooling: production never
imports it, and it binds to loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from hub_sandbox.server import check_loopback

CHUNK = 64 * 1024


@dataclass
class ProxyStats:
    """What the proxy saw: connections, bytes each way, and where it cut or held them."""

    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    drops: list[int] = field(default_factory=list)  # upstream bytes of each cut connection when cut
    stalls: int = 0


@dataclass
class _Armed:
    drop_after: int | None = None
    drops_left: int = 0
    stall_seconds: float = 0.0
    stalls_left: int = 0


class FaultProxy:
    """``127.0.0.1:<port>`` → ``target_host:target_port``, with faults armed on demand."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", host: str = "127.0.0.1") -> None:
        check_loopback(host)
        self.target = (target_host, target_port)
        self.host = host
        self.stats = ProxyStats()
        self._armed = _Armed()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._release = asyncio.Event()
        self._port = 0

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._port = future.result(timeout=10)
        return self

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self.clear()

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    # -- faults -----------------------------------------------------------------------------------
    def drop_after(self, upstream_bytes: int, connections: int = 1) -> None:
        """Cut the next ``connections`` connection(s) once they have sent ``upstream_bytes`` bytes."""
        with self._lock:
            self._armed.drop_after, self._armed.drops_left = upstream_bytes, connections

    def stall(self, seconds: float, times: int = 1) -> None:
        """Hold the server's next ``times`` answer chunk(s) for ``seconds`` each."""
        with self._lock:
            self._armed.stall_seconds, self._armed.stalls_left = seconds, times

    def clear(self) -> None:
        """Disarm every fault and let held answers through now."""
        with self._lock:
            self._armed = _Armed()
        self._loop.call_soon_threadsafe(self._release.set)

    # -- the pumps --------------------------------------------------------------------------------
    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        writers = (client_writer, server_writer)
        await asyncio.gather(
            self._pump_up(client_reader, server_writer, writers),
            self._pump_down(server_reader, client_writer, writers),
            return_exceptions=True,
        )
        for writer in writers:
            writer.transport.abort()

    def _take_drop(self, sent: int, incoming: int) -> int | None:
        """How many of ``incoming`` bytes still go through before this connection is cut, if it is."""
        with self._lock:
            armed = self._armed
            if armed.drops_left <= 0 or armed.drop_after is None or sent + incoming <= armed.drop_after:
                return None
            armed.drops_left -= 1
            return max(0, armed.drop_after - sent)

    def _take_stall(self) -> float:
        with self._lock:
            if self._armed.stalls_left <= 0:
                return 0.0
            self._armed.stalls_left -= 1
            return self._armed.stall_seconds

    async def _pump_up(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        writers: tuple[asyncio.StreamWriter, ...],
    ) -> None:
        sent = 0
        try:
            while chunk := await reader.read(CHUNK):
                keep = self._take_drop(sent, len(chunk))
                if keep is not None:
                    writer.write(chunk[:keep])
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                    self.stats.bytes_up += keep
                    self.stats.drops.append(sent + keep)
                    for each in writers:  # a reset, not a polite close: the link is gone
                        each.transport.abort()
                    return
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
                self.stats.bytes_up += len(chunk)
            writer.write_eof()
        except (ConnectionError, OSError):
            for each in writers:
                each.transport.abort()

    async def _pump_down(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        writers: tuple[asyncio.StreamWriter, ...],
    ) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                seconds = self._take_stall()
                if seconds > 0:
                    self.stats.stalls += 1
                    self._release = asyncio.Event()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._release.wait(), seconds)
                writer.write(chunk)
                await writer.drain()
                self.stats.bytes_down += len(chunk)
            writer.write_eof()
        except (ConnectionError, OSError):
            for each in writers:
                each.transport.abort()
