from __future__ import annotations

from marshmallow import fields, validate

from provisioner.schemas.common import Schema, StrictSchema


class EventsQuerySchema(StrictSchema):
    ticket = fields.String(
        load_default=None,
        validate=validate.Length(1, 2000),
        metadata={"description": "a stream ticket (…/events/ticket), for clients without headers"},
    )
    last_event_id = fields.String(
        load_default=None,
        metadata={"description": "the version the client shows (as Last-Event-ID would say)"},
    )


class StreamTicketSchema(Schema):
    ticket = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})
