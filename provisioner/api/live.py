"""Live status of a workspace's provisioning as Server-Sent Events.

`GET …/tenants/{id}/events` streams `event: status` (the body of `GET …/status`) on
connect and after every run or step transition, announced through Redis pub/sub once the
change is committed and then read from the database (`event: idle` while the workspace
has no run). Comment lines keep the connection alive; the stream ends after a few
minutes and the client opens a new one.

Browsers' EventSource cannot send an Authorization header, so besides the bearer header
this route accepts `?ticket=…`: a signed ticket from `POST …/tenants/{id}/events/ticket`
that is good for one minute, for reading this one workspace's stream and nothing else
(unlike the bearer token, it is harmless in an access log). Without Redis the route
answers 503 `live_unavailable` and clients poll `…/status`.

Mounted at /api/v1/provisioning and at the unversioned /api/provisioning.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from flask import Blueprint, Response, current_app, g, stream_with_context
from sqlalchemy.exc import OperationalError

from provisioner.api.access import Need, authenticated, current_user, load_query, tenant_for
from provisioner.api.errors import ApiError
from provisioner.api.openapi import documented
from provisioner.extensions import db
from provisioner.models import User, latest_run
from provisioner.observability import live
from provisioner.schemas.live import EventsQuerySchema, StreamTicketSchema
from provisioner.schemas.run import status_document
from provisioner.security.tokens import ALGORITHM

TICKET_AUDIENCE = "provisioner:events"
TICKET_TTL_SECONDS = 60
STREAM_SECONDS = 300  # then the client reconnects (and re-authenticates)
KEEPALIVE_SECONDS = 15  # also how often the state is read again without any announcement


def blueprint(name: str, prefix: str) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=prefix)
    bp.add_url_rule("/tenants/<tenant_id>/events", view_func=events, methods=["GET"])
    bp.add_url_rule("/tenants/<tenant_id>/events/ticket", view_func=ticket, methods=["POST"])
    return bp


@documented(response=StreamTicketSchema)
@authenticated
def ticket(tenant_id: str):
    """A one-minute ticket to open the workspace's event stream (EventSource sends no headers)."""
    tenant = tenant_for(tenant_id, Need.READ)
    now = datetime.now(UTC)
    claims = {
        "sub": str(current_user().id),
        "aud": TICKET_AUDIENCE,
        "tenant": str(tenant.id),
        "iat": now,
        "exp": now + timedelta(seconds=TICKET_TTL_SECONDS),
    }
    signed = jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM)
    return StreamTicketSchema().dump({"ticket": signed, "expires_in": TICKET_TTL_SECONDS})


@documented(query=EventsQuerySchema)
def events(tenant_id: str):
    """Server-Sent Events: the run's status on connect and after every change."""
    signed = load_query(EventsQuerySchema())["ticket"]
    if signed is None:
        return authenticated(_open_stream)(tenant_id)
    g.user = _ticket_user(signed, tenant_id)
    return _open_stream(tenant_id)


def _ticket_user(signed: str, tenant_id: str) -> User:
    try:
        claims = jwt.decode(
            signed,
            current_app.config["SECRET_KEY"],
            algorithms=[ALGORITHM],
            audience=TICKET_AUDIENCE,
            options={"require": ["sub", "aud", "tenant", "exp"]},
        )
        valid = uuid.UUID(claims["tenant"]) == uuid.UUID(tenant_id)
        user = db.session.get(User, uuid.UUID(claims["sub"])) if valid else None
    except (jwt.PyJWTError, ValueError):
        user = None
    if user is None:
        raise ApiError(
            401,
            "unauthorized",
            "the stream ticket is invalid, expired or for another workspace",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


def _open_stream(tenant_id: str) -> Response:
    tenant = tenant_for(tenant_id, Need.READ)
    try:
        # Subscribed before the first read: no change can slip between the two.
        subscription = live.subscribe(tenant.id)
    except live.Unavailable:
        raise ApiError(
            503,
            "live_unavailable",
            "live updates are unavailable now; poll …/status instead",
            headers={"Retry-After": "10"},
        ) from None
    return Response(
        stream_with_context(_frames(tenant.id, subscription)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _frames(tenant_id: uuid.UUID, subscription: live.Subscription) -> Iterator[str]:
    """The state now, then again after each announced change; a comment when nothing changed."""
    deadline = time.monotonic() + STREAM_SECONDS
    sent = None
    try:
        while True:
            frame = _state_frame(tenant_id)
            yield frame if frame != sent else ": keep-alive\n\n"
            sent = frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            subscription.wait(min(KEEPALIVE_SECONDS, remaining))
    except (live.Unavailable, OperationalError):
        return  # Redis or the database went away: end the stream, the client falls back
    finally:
        subscription.close()


def _state_frame(tenant_id: uuid.UUID) -> str:
    """The workspace's latest run, read in a transaction of its own."""
    try:
        run = latest_run(tenant_id, with_steps=True)
        if run is None:
            idle = {"tenant_id": str(tenant_id), "message": "not provisioned yet"}
            return _frame("idle", idle)
        return _frame("status", status_document(run))
    finally:
        db.session.close()  # a stream lasts minutes: do not hold a pooled connection


def _frame(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
