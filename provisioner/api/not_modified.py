"""`304 Not Modified` for status polls from memory: no Flask, no PostgreSQL, no Redis call.

A poller sends `GET …/tenants/<id>/status` with its bearer token and the ETag it holds. The
full read (`status.conditional_answer`) tells this process two things it then remembers
(`Memory.confirm`): this token may read this workspace, and the workspace's latest run is
at this version. `NotModified`, a WSGI middleware in front of the app, answers the same
question again with 304 from that memory, as long as all of these hold:

- the database confirmed both within STATUS_MEMORY_SECONDS, and the token has not expired;
- this process's one Redis subscription (`live.feed`, a thread) has been up all that time:
  it hears every committed change of a run (the live channel) and drops that workspace's
  version, and every change of access (a user disabled or given a new password, a member
  removed: `signals.access_revoked`) and drops every grant;
- the request is exactly a poll: one strong tag, a bearer token, nothing else to decide.

Anything else goes to Flask, which reads the database and confirms again. A change whose
announcement is lost (its process died between commit and publish) is seen within
STATUS_MEMORY_SECONDS at worst; a 304 carries no data, only "what you hold is current".
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from flask import Flask

from provisioner.api.access import id_or_none, token_in
from provisioner.observability import context

MEMORY = "status_memory"  # app.extensions key
ROUTE = re.compile(r"^/api(?:/v1)?/provisioning/tenants/([^/]+)/status$")
MAX_ENTRIES = 50_000  # of each kind; past it, memory starts again (the database refills it)
_DEAF = 1 << 62  # `_valid_from` while the feed is not subscribed: no mark is that late
_CORRELATION_KEY = "HTTP_" + context.CORRELATION_HEADER.upper().replace("-", "_")
StartResponse = Callable[..., Any]


class Feed(Protocol):
    """What keeps a `Memory` true (`live.feed.Feed`): started on the first poll."""

    def ensure_started(self) -> None: ...


def install(app: Flask, feed: Callable[[Memory, str], Feed]) -> None:
    """Put `NotModified` in front of the app, fed by `feed(memory, redis_url)`, unless
    STATUS_MEMORY_SECONDS is 0 or there is no Redis to hear changes from (then every poll
    is read from the database)."""
    seconds, url = app.config["STATUS_MEMORY_SECONDS"], str(app.config.get("REDIS_URL") or "")
    if seconds <= 0 or not url.startswith(("redis://", "rediss://")):
        return
    memory = app.extensions[MEMORY] = Memory(seconds)
    app.wsgi_app = NotModified(app.wsgi_app, memory, feed(memory, url))  # type: ignore[method-assign]


class Memory:
    """What the database confirmed lately, and what the subscription heard since.

    `mark()` before a database read, `confirm(mark, …)` after it: a change heard in between
    (or a lost subscription) makes the confirmation void, so memory never goes back in time.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._seq = 0  # advanced by everything heard and by every (re)connection
        self._valid_from = 1  # confirmations marked before this are void
        self._heard: dict[str, int] = {}  # tenant -> seq of its latest change heard
        self._versions: dict[str, tuple[str, float]] = {}  # tenant -> (tag, confirmed at)
        self._grants: dict[tuple[str, str], tuple[float, float]] = {}  # -> (at, token expiry)

    @property
    def listening(self) -> bool:
        """Whether the feed is subscribed (what it confirms now can be trusted)."""
        return self._seq > 0 and self._valid_from < _DEAF

    def mark(self) -> int:
        return self._seq

    def confirm(self, mark: int, token: str, tenant: str, tag: str, expires: float) -> None:
        """The database said, after `mark()`: `token` may read `tenant`, whose tag is `tag`."""
        with self._lock:
            if mark < self._valid_from or self._heard.get(tenant, -1) > mark:
                return
            if len(self._versions) >= MAX_ENTRIES or len(self._grants) >= MAX_ENTRIES:
                self._forget_all()
                return
            now = time.monotonic()
            self._versions[tenant] = (tag, now)
            self._grants[(token, tenant)] = (now, expires)

    def current(self, token: str, tenant: str, tag: str) -> bool:
        """True if `tag` is `tenant`'s current one and `token` may read it, from memory."""
        version = self._versions.get(tenant)
        grant = self._grants.get((token, tenant))
        if version is None or grant is None or version[0] != tag:
            return False
        oldest = time.monotonic() - self.seconds
        return version[1] > oldest and grant[0] > oldest and grant[1] > time.time()

    # -- what the subscription hears ------------------------------------------------------
    def changed(self, tenant: str) -> None:
        with self._lock:
            self._seq += 1
            self._versions.pop(tenant, None)
            if len(self._heard) >= MAX_ENTRIES:
                self._forget_all()
            self._heard[tenant] = self._seq

    def access_changed(self) -> None:
        with self._lock:
            self._seq += 1
            self._valid_from = self._seq
            self._grants.clear()

    def connected(self) -> None:
        """Listening from now on: what is confirmed after this can be trusted."""
        with self._lock:
            self._forget_all()

    def disconnected(self) -> None:
        """Deaf: nothing remembered can be trusted, nothing confirmed now either."""
        with self._lock:
            self._forget_all()
            self._valid_from = _DEAF  # until `connected()`

    def _forget_all(self) -> None:
        self._seq += 1
        self._valid_from = self._seq
        self._heard.clear()
        self._versions.clear()
        self._grants.clear()


class NotModified:
    """WSGI middleware: a status poll that memory can answer gets its 304 here."""

    def __init__(self, app: Callable[..., Iterable[bytes]], memory: Memory, feed: Feed) -> None:
        self.app, self.memory, self.feed = app, memory, feed

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        tag = environ.get("HTTP_IF_NONE_MATCH")
        if tag and environ["REQUEST_METHOD"] == "GET":
            self.feed.ensure_started()
            answer = self._from_memory(environ, tag.strip())
            if answer is not None:
                start_response("304 Not Modified", answer)
                return []
        return self.app(environ, start_response)

    def _from_memory(self, environ: dict[str, Any], tag: str) -> list[tuple[str, str]] | None:
        route = ROUTE.match(environ.get("PATH_INFO", ""))
        token = token_in(environ.get("HTTP_AUTHORIZATION", ""))
        if route is None or token is None or environ.get("QUERY_STRING"):
            return None
        tenant = id_or_none(route[1])
        if tenant is None or not self.memory.current(token, str(tenant), tag):
            return None
        supplied = environ.get(_CORRELATION_KEY, "")
        return [
            ("ETag", tag),
            ("Cache-Control", "private, no-cache"),
            (context.CORRELATION_HEADER, context.correlation_id_from(supplied)),
        ]
