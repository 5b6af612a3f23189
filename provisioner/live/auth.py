"""Stream tickets, checked without a database: signature, audience, expiry, workspace.

A ticket is the JWT `POST …/tenants/<id>/events/ticket` on the API issues (HS256 with
SECRET_KEY, `aud` = `provisioner:events`, claims `sub`, `tenant`, `exp`; one minute). The
API checked the user's right to read the workspace when it issued the ticket, so the live
process needs nothing else. A bearer header alone is refused (401, `ticket_required`): the
live process never calls the API or the database per request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from provisioner.security.tokens import InvalidToken, stream_ticket_user


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Viewer:
    user_id: str
    tenant_id: uuid.UUID


def check_ticket(ticket: str | None, tenant_id: uuid.UUID, secret: str, *, bearer: bool) -> Viewer:
    """The viewer a valid ticket for this workspace names; `Refused` otherwise."""
    if not ticket:
        if bearer:
            raise Refused(
                "ticket_required",
                "the live stream takes ?ticket= from POST …/events/ticket, not a bearer token",
            )
        raise Refused("unauthorized", "a stream ticket (?ticket=) is required")
    try:
        return Viewer(stream_ticket_user(secret, ticket, tenant_id), tenant_id)
    except InvalidToken as exc:
        raise Refused(
            "unauthorized", "the stream ticket is invalid, expired or for another workspace"
        ) from exc
