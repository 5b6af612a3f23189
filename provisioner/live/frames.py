"""SSE frames as bytes on the wire (HTTP/1.1 chunks), built once and shared by viewers.

`event: status` / `event: idle` and their `data` are exactly today's; `id:` carries the
version (what `Last-Event-ID` gives back on reconnect). Dialects: the versioned route's
documents go as they are; the unversioned `/api/provisioning/…` route's go through
`DIALECTS["legacy"]`: the page's step identifiers and shapes (`schemas.dialects`), the
same translation the unversioned `…/status` route makes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from provisioner.live.protocol import State, compact
from provisioner.schemas.dialects import page_document

Translate = Callable[[Any], Any]
DIALECTS: dict[str, Translate | None] = {"v1": None, "legacy": page_document}


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


KEEPALIVE = chunk(b": keep-alive\n\n")


def retry(milliseconds: int) -> bytes:
    return chunk(f"retry: {milliseconds}\n\n".encode())


def encode(state: State, dialect: str) -> bytes:
    translate = DIALECTS[dialect]
    data = state.data if translate is None else compact(translate(json.loads(state.data)))
    return chunk(f"id: {state.version}\nevent: {state.event}\ndata: {data}\n\n".encode())
