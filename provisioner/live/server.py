"""The live process's HTTP/1.1 server: asyncio + httptools, one Protocol per connection.

No task and no coroutine per stream: a stream is its connection's transport, which the hub
writes the shared frame bytes to. That is what holds 5,000 streams in ~44 MiB (see the
README's "Live updates"). Routes: `GET /api/v1/provisioning/tenants/<id>/events`,
`GET /api/provisioning/tenants/<id>/events` (the `legacy` dialect) and `GET /healthz`.
Every other answer is JSON `{"error": {"code", "message"}}` and closes the connection.

Being its own HTTP server, it defends itself as one: a request head larger than
MAX_REQUEST_BYTES answers 431, a client that has not sent a whole request within
LIVE_REQUEST_TIMEOUT seconds is cut off (slowloris), a body is never read, only GET is served.
Streams answer `Access-Control-Allow-Origin: *`: they are opened with a ticket in the URL,
never with cookies, so a page served from another origin (the API's) may read them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httptools

from provisioner.live import frames
from provisioner.live.auth import Refused, check_ticket
from provisioner.live.hub import Hub

log = logging.getLogger(__name__)
ROUTE = re.compile(r"^/api(?P<v1>/v1)?/provisioning/tenants/(?P<tenant>[^/]+)/events$")
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
    b"X-Accel-Buffering: no\r\nAccess-Control-Allow-Origin: *\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
MAX_REQUEST_BYTES = 16 * 1024  # URL and headers; a ticket is about 300 bytes
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Settings:
    secret_key: str
    stream_seconds: float
    keepalive_seconds: float
    retry_ms: int
    max_streams_per_user: int
    send_timeout: float
    send_buffer: int
    request_timeout: float

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        return cls(
            secret_key=config["SECRET_KEY"],
            stream_seconds=config["LIVE_STREAM_SECONDS"],
            keepalive_seconds=config["LIVE_KEEPALIVE_SECONDS"],
            retry_ms=config["LIVE_RETRY_MS"],
            max_streams_per_user=config["LIVE_MAX_STREAMS_PER_USER"],
            send_timeout=config["LIVE_SEND_TIMEOUT"],
            send_buffer=config["LIVE_SEND_BUFFER"],
            request_timeout=config["LIVE_REQUEST_TIMEOUT"],
        )


class Connection(asyncio.Protocol):
    """One client connection: parses one request, then answers it or becomes a stream."""

    def __init__(self, hub: Hub, settings: Settings) -> None:
        self.hub, self.settings = hub, settings
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: dict[str, str] = {}
        self.query: dict[str, list[str]] = {}
        self.tenant_id = uuid.UUID(int=0)
        self.user_id = ""
        self.dialect = "v1"
        self.sent_version = -1
        self.streaming = False
        self.paused_since: float | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._request_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._request_timer = asyncio.get_running_loop().call_later(
            self.settings.request_timeout,
            self._reply,
            408,
            "request_timeout",
            "the request took too long",
        )

    def data_received(self, data: bytes) -> None:
        if self.streaming:
            return  # a stream's client has nothing more to say
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:  # also what a callback raised, wrapped by the parser
            if self._head_bytes > MAX_REQUEST_BYTES:
                self._reply(431, "request_too_large", "the request's URL and headers are too large")
            else:
                self._reply(400, "bad_request", "malformed HTTP request")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.streaming:
            self.hub.remove(self)
        for timer in (self._deadline, self._request_timer):
            if timer is not None:
                timer.cancel()

    def pause_writing(self) -> None:
        self.paused_since = time.monotonic()

    def resume_writing(self) -> None:
        self.paused_since = None

    # -- httptools callbacks ---------------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        self._count(url)
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(name, value)
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def _count(self, *parts: bytes) -> None:
        self._head_bytes += sum(map(len, parts))
        if self._head_bytes > MAX_REQUEST_BYTES:
            raise ValueError("the request head is too large")  # the parser stops here

    def on_message_complete(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
        if self.parser.get_method() != b"GET":
            self._reply(405, "method_not_allowed", "only GET is served here")
            return
        asyncio.get_running_loop().create_task(self._route())

    # -- requests --------------------------------------------------------------------------
    async def _route(self) -> None:
        parts = urlsplit(self.url.decode("latin-1"))
        if parts.path == "/healthz":
            body = {"status": "ok", "streams": self.hub.open_streams,
                    "redis_subscribed": self.hub.subscribed}  # fmt: skip
            self._send_json(200 if self.hub.subscribed else 503, body)
            return
        match = ROUTE.match(parts.path)
        if match is None:
            self._reply(404, "not_found", "no such route")
            return
        try:
            self.tenant_id = uuid.UUID(match["tenant"])
        except ValueError:
            self._reply(404, "not_found", "no such workspace")
            return
        self.dialect = "v1" if match["v1"] else "legacy"
        self.query = parse_qs(parts.query)
        ticket = self._param("ticket")
        try:
            viewer = check_ticket(
                ticket,
                self.tenant_id,
                self.settings.secret_key,
                bearer=self.headers.get("authorization", "").lower().startswith("bearer "),
            )
        except Refused as refused:
            self._reply(401, refused.code, refused.message, {"WWW-Authenticate": "Bearer"})
            return
        if self.hub.per_user[viewer.user_id] >= self.settings.max_streams_per_user:
            limit = self.settings.max_streams_per_user
            self._reply(429, "too_many_streams", f"at most {limit} open streams per user",
                        {"Retry-After": "10"})  # fmt: skip
            return
        await self._open_stream(viewer.user_id)

    async def _open_stream(self, user_id: str) -> None:
        assert self.transport is not None
        self.user_id, self.streaming = user_id, True
        self.hub.add(self)  # before the read: a change published meanwhile is not missed
        try:
            state = await self.hub.load(self.tenant_id)
        except Exception as exc:  # Redis and PostgreSQL both unreachable
            log.warning("live: no state for %s (%s)", self.tenant_id, exc)
            self.hub.remove(self)
            self.streaming = False
            self._reply(503, "live_unavailable", "live updates are unavailable; poll …/status",
                        {"Retry-After": "10"})  # fmt: skip
            return
        if self.transport.is_closing():
            self.hub.remove(self)
            return
        self.transport.write(STREAM_HEAD + frames.retry(self.settings.retry_ms))
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.settings.stream_seconds, self.end)
        state = self.hub.current(self.tenant_id) or state  # newer if published meanwhile
        # EventSource sends Last-Event-ID when it reconnects by itself; a page that opens a
        # new stream (with a new ticket) says which version it has with ?last_event_id=.
        last = self.headers.get("last-event-id") or self._param("last_event_id")
        if last == str(state.version):
            self.sent_version = state.version
            self.transport.write(frames.KEEPALIVE)  # the client has this state already
        else:
            self.hub.send_current(self.tenant_id, lambda s: s is self)

    def _param(self, name: str) -> str | None:
        return next(iter(self.query.get(name, [])), None)

    def send(self, chunk: bytes) -> bool:
        """Write a frame; a client that does not read is dropped, never buffered on."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._deadline is None:
            return False  # gone, or its head is not written yet (its state read is under way)
        slow_for = 0.0 if self.paused_since is None else time.monotonic() - self.paused_since
        if (
            transport.get_write_buffer_size() > self.settings.send_buffer
            or slow_for > self.settings.send_timeout
        ):
            log.info("live: dropped a slow client of %s", self.tenant_id)
            transport.abort()
            return False
        transport.write(chunk)
        return True

    def end(self) -> None:
        """The stream's time is up: close it cleanly (the client reconnects)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"0\r\n\r\n")
            self.transport.close()

    def _reply(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send_json(status, {"error": {"code": code, "message": message}}, headers)

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        payload = json.dumps(body).encode()
        extra = [f"{k}: {v}" for k, v in (headers or {}).items()]
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
                "Content-Type: application/json", f"Content-Length: {len(payload)}",
                "Connection: close", *extra]  # fmt: skip
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        self.transport.close()
