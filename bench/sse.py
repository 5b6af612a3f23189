"""A light asyncio Server-Sent Events client, made to hold thousands of streams in one process.

Each stream is an `asyncio.Protocol` (no task, no StreamReader per connection) that parses
the HTTP/1.1 answer (chunked or read-until-close), splits the body into SSE events and keeps
them with their arrival time (`time.perf_counter()`). Used by the live benchmark and by
`tests/integration/test_live_process.py`; it only ever talks to this machine's servers.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast


@dataclass(frozen=True)
class Event:
    """One SSE event (comments are counted, not kept)."""

    event: str
    data: str
    id: str | None
    retry: int | None
    received: float


def request_bytes(
    path: str, host: str = "127.0.0.1", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept: text/event-stream"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class SseStream(asyncio.Protocol):
    """One stream. `status` and `headers` once the answer's head is in; `body` holds a
    non-stream answer (an error's JSON); `closed` resolves when the server hangs up."""

    request: bytes
    on_event: Callable[[SseStream, Event], None] | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    comments: int = 0
    retry_ms: int | None = None  # the last `retry:` field
    body: bytes = b""
    transport: asyncio.Transport | None = None
    closed: asyncio.Future[None] | None = None
    _raw: bytes = b""
    _chunked: bool = False
    _text: str = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.closed = asyncio.get_running_loop().create_future()
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    @property
    def is_open(self) -> bool:
        return self.closed is not None and not self.closed.done()

    @property
    def last_id(self) -> str | None:
        return next((e.id for e in reversed(self.events) if e.id is not None), None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._raw += data
        if self.status is None:
            head, sep, rest = self._raw.partition(b"\r\n\r\n")
            if not sep:
                return
            lines = head.decode("latin-1").split("\r\n")
            self.status = int(lines[0].split(" ", 2)[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
            self._raw = rest
        body = self._dechunk() if self._chunked else self._take_all()
        if self.status != 200:
            self.body += body
            return
        self._text += body.decode()
        self._split_events()

    def _take_all(self) -> bytes:
        out, self._raw = self._raw, b""
        return out

    def _dechunk(self) -> bytes:
        out = []
        while True:
            size_line, sep, rest = self._raw.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line.split(b";", 1)[0], 16)
            if len(rest) < size + 2:
                break
            out.append(rest[:size])
            self._raw = rest[size + 2 :]
        return b"".join(out)

    def _split_events(self) -> None:
        now = time.perf_counter()
        while True:
            block, sep, rest = self._text.partition("\n\n")
            if not sep:
                return
            self._text = rest
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    self.comments += 1
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value
            if "retry" in fields:
                self.retry_ms = int(fields["retry"])
            if "event" in fields or "data" in fields:
                event = Event(
                    event=fields.get("event", "message"),
                    data=fields.get("data", ""),
                    id=fields.get("id"),
                    retry=int(fields["retry"]) if "retry" in fields else None,
                    received=now,
                )
                self.events.append(event)
                if self.on_event is not None:
                    self.on_event(self, event)


async def open_stream(
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    receive_buffer: int | None = None,
    on_event: Callable[[SseStream, Event], None] | None = None,
) -> SseStream:
    """Connect and send the request; the answer arrives on the returned stream.

    `receive_buffer` shrinks the socket's receive buffer, to play a client that reads slowly.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, port))
    stream = SseStream(request_bytes(path, host, headers), on_event=on_event)
    await loop.create_connection(lambda: stream, sock=sock)
    return stream


async def open_many(
    port: int, paths: Iterable[str], *, concurrency: int = 200, **kwargs: object
) -> list[SseStream]:
    """Open one stream per path, at most `concurrency` connects in flight."""
    slots = asyncio.Semaphore(concurrency)

    async def one(path: str) -> SseStream:
        async with slots:
            return await open_stream(port, path, **kwargs)  # type: ignore[arg-type]

    return list(await asyncio.gather(*(one(p) for p in paths)))


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` every 10 ms until it holds; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)
