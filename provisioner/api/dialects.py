"""One view, two dialects: each blueprint binds the views it serves to its dialect.

A view takes the dialect as its first argument and puts its answer through
`schemas.dialects`; the OpenAPI document shows each prefix with its own shapes: on the page's
routes the page's schemas, and 200 where v1 answers 202 (the page's test plan expects 200).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from marshmallow import Schema

from provisioner.schemas.dialects import Dialect
from provisioner.schemas.page import PageLogSchema, PageRunPageSchema, PageStatusSchema
from provisioner.schemas.run import RunLogSchema, RunPageSchema, RunStatusSchema

PAGE_SHAPES: dict[type[Schema], type[Schema]] = {
    RunStatusSchema: PageStatusSchema,
    RunLogSchema: PageLogSchema,
    RunPageSchema: PageRunPageSchema,
}


def accepted(dialect: Dialect) -> int:
    """The status of an answer to a command that queued work."""
    return 200 if dialect == Dialect.PAGE else 202


def speaking(dialect: Dialect, view: Callable[..., Any]) -> Callable[..., Any]:
    """`view` bound to `dialect`, documented with that dialect's shapes."""

    @wraps(view)
    def bound(**kwargs: Any) -> Any:
        return view(dialect, **kwargs)

    meta = dict(view.openapi)  # type: ignore[attr-defined]
    if dialect == Dialect.PAGE:
        meta["response"] = PAGE_SHAPES.get(meta["response"], meta["response"])
        meta["status"] = accepted(dialect) if meta["status"] == 202 else meta["status"]
    bound.openapi = meta  # type: ignore[attr-defined]
    return bound
