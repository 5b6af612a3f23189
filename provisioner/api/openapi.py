"""The OpenAPI document at /api/v1/openapi.json, generated from the routes and their schemas.

Views declare their schemas with `@documented(...)`; every API route appears in the
document, with the JSON error shape for its failures and bearer auth unless it is public.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app
from marshmallow import Schema

from provisioner.schemas.errors import ErrorSchema
from provisioner.schemas.live import EventsQuerySchema

F = TypeVar("F", bound=Callable[..., Any])
DOCUMENTED_PREFIXES = ("/api/", "/iam/", "/healthz", "/readyz", "/metrics")
# Routes in the dialect of the platform's existing page (`schemas.dialects`).
PAGE_PREFIXES = ("/api/provisioning/", "/api/iam/", "/iam/")
PUBLIC = {"/api/v1/auth/login", "/api/v1/openapi.json", "/healthz", "/readyz", "/metrics"}
ERRORS = {
    "400": "Malformed request",
    "401": "No valid bearer token",
    "403": "The caller's role does not allow this",
    "404": "No such resource, or not visible to the caller",
    "409": "Not allowed in the current state (the state is in details)",
    "413": "The body is larger than MAX_CONTENT_LENGTH",
    "422": "Invalid fields (each named in details)",
    "429": "Rate limited (see Retry-After)",
    "503": "Database or task queue unavailable",
}

LIVE_PREFIXES = ("/api/v1/provisioning", "/api/provisioning")

bp = Blueprint("openapi", __name__)


def documented(
    *,
    body: type[Schema] | Schema | None = None,
    query: type[Schema] | None = None,
    response: type[Schema] | Schema | None = None,
    status: int = 200,
    conditional: bool = False,
) -> Callable[[F], F]:
    """Attach the request and response schemas of a view for the OpenAPI document
    (`conditional`: it answers with an ETag, and 304 to an If-None-Match that holds it)."""

    def mark(view: F) -> F:
        view.openapi = {  # type: ignore[attr-defined]
            "body": body,
            "query": query,
            "response": response,
            "status": status,
            "conditional": conditional,
        }
        return view

    return mark


@bp.get("/api/v1/openapi.json")
def openapi_json():
    """This document."""
    return build(current_app).to_dict()


def build(app: Flask) -> APISpec:
    spec = APISpec(
        title="Provisioner",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Provision ERPNext workspaces step by step (SPEC §6)."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(DOCUMENTED_PREFIXES):
            continue
        view = app.view_functions[rule.endpoint]
        operations = {
            method.lower(): _operation(rule.rule, rule.endpoint, view)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        }
        path = re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        spec.path(path=path, operations=operations, parameters=_path_params(rule.arguments))
    for prefix in LIVE_PREFIXES:
        spec.path(
            path=f"{prefix}/tenants/{{tenant_id}}/events",
            operations={"get": _live_operation(prefix)},
            parameters=_path_params(["tenant_id"]),
        )
    return spec


def _live_operation(prefix: str) -> dict[str, Any]:
    """The stream, served by the live process (`python -m provisioner.live`) on this path."""
    return {
        "summary": "Server-Sent Events of the workspace's status (served by the live process)",
        "description": (
            "`event: status` (the body of …/status) on connect and after every change, "
            "`event: idle` while the workspace has no run; `id:` is the status version "
            "(`Last-Event-ID` on reconnect). Needs `?ticket=` from …/events/ticket."
        ),
        "operationId": f"live.events{'' if prefix.startswith('/api/v1') else '_legacy'}",
        "tags": ["live"],
        "parameters": [{"in": "query", "schema": EventsQuerySchema}],
        "responses": {
            "200": {"description": "text/event-stream"},
            **{
                code: {
                    "description": ERRORS[code],
                    "content": {"application/json": {"schema": "Error"}},
                }
                for code in ("401", "404", "429", "503")
            },
        },
        **({"deprecated": True} if not prefix.startswith("/api/v1") else {}),
    }


def _operation(rule: str, endpoint: str, view: Callable[..., Any]) -> dict[str, Any]:
    meta = getattr(view, "openapi", {})
    doc = (view.__doc__ or endpoint.replace("_", " ")).strip().splitlines()[0]
    status = str(meta.get("status", 200))
    success: dict[str, Any] = {"description": "OK"}
    if meta.get("response") is not None:
        success["content"] = {"application/json": {"schema": meta["response"]}}
    responses = {status: success}
    if meta.get("conditional"):
        success["headers"] = _ETAG
        responses["304"] = {"description": "Not modified (the ETag matched)", "headers": _ETAG}
    responses.update(_errors(ERRORS))
    operation: dict[str, Any] = {
        "summary": doc,
        "operationId": endpoint,
        "tags": [endpoint.split(".", maxsplit=1)[0]],
        "responses": responses,
    }
    if rule.startswith(PAGE_PREFIXES):
        operation["deprecated"] = True  # the page's dialect; new clients use /api/v1
    if rule not in PUBLIC:
        operation["security"] = [{"bearer": []}]
    if meta.get("body") is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": meta["body"]}},
        }
    if meta.get("query") is not None:
        operation["parameters"] = [{"in": "query", "schema": meta["query"]}]
    if meta.get("conditional"):
        operation["parameters"] = [*operation.get("parameters", []), _IF_NONE_MATCH]
    return operation


def _errors(texts: dict[str, str]) -> dict[str, Any]:
    """Error answers with the JSON error shape, by status code."""
    error = {"application/json": {"schema": "Error"}}
    return {code: {"description": text, "content": error} for code, text in texts.items()}


_IF_NONE_MATCH = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "the ETag of an earlier answer: 304 while it is still the current one",
}
_ETAG = {"ETag": {"description": "strong; changes with every change", "schema": {"type": "string"}}}


def _path_params(names: Any) -> list[dict[str, Any]]:
    return [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in sorted(names)
    ]
