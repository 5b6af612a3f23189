"""The fields that follow one piece of work through web, worker and engine calls.

Kept in context variables so that every log line and every engine request made while
handling a request or running a task carries them without passing them by hand.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

CORRELATION_HEADER = "X-Correlation-ID"
_SUPPLIED = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_fields: ContextVar[dict[str, Any]] = ContextVar("provisioner_log_fields", default={})  # noqa: B039


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def correlation_id_from(supplied: str) -> str:
    """The caller's `X-Correlation-ID` if it is a sane one, else a new id."""
    return supplied if _SUPPLIED.fullmatch(supplied) else new_correlation_id()


def current() -> dict[str, Any]:
    """The fields bound now (a copy)."""
    return dict(_fields.get())


def correlation_id() -> str | None:
    return _fields.get().get("correlation_id")


def bind(**fields: Any) -> Token[dict[str, Any]]:
    """Add fields (None values are left out) until `reset(token)`; for request hooks."""
    return _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})


def reset(token: Token[dict[str, Any]]) -> None:
    _fields.reset(token)


@contextmanager
def bound(**fields: Any) -> Iterator[dict[str, Any]]:
    """Bind fields for the duration of a block; None values are left out."""
    token = bind(**fields)
    try:
        yield _fields.get()
    finally:
        reset(token)
