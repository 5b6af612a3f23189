"""Tickets for the live stream of a workspace (`POST …/tenants/{id}/events/ticket`).

The stream itself (`GET …/tenants/{id}/events`, Server-Sent Events) is served by the live
process (`provisioner/live`, the Procfile's `live`), so that open pages never hold the
API's request threads. Browsers' EventSource cannot send an Authorization header: the page
asks this route for a ticket (a signed JWT good for one minute, for reading this one
workspace's stream and nothing else) and opens the stream with `?ticket=`.

Mounted at /api/v1/provisioning and at the unversioned /api/provisioning.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from provisioner.api.access import Need, authenticated, current_user, tenant_for
from provisioner.api.openapi import documented
from provisioner.schemas.live import StreamTicketSchema
from provisioner.security import tokens


def blueprint(name: str, prefix: str) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=prefix)
    bp.add_url_rule("/tenants/<tenant_id>/events/ticket", view_func=ticket, methods=["POST"])
    return bp


@documented(response=StreamTicketSchema)
@authenticated
def ticket(tenant_id: str) -> Any:
    """A one-minute ticket to open the workspace's live stream (EventSource sends no headers)."""
    tenant = tenant_for(tenant_id, Need.READ)
    signed = tokens.stream_ticket(current_app.config["SECRET_KEY"], current_user().id, tenant.id)
    return StreamTicketSchema().dump({"ticket": signed, "expires_in": tokens.TICKET_TTL_SECONDS})
