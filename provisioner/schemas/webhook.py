from __future__ import annotations

from marshmallow import fields, validate

from provisioner.schemas.common import Schema, StrictSchema, page_of


class WebhookCreateSchema(StrictSchema):
    url = fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=2048),
        metadata={"description": "where the signed POSTs go"},
    )


class WebhookSchema(Schema):
    id = fields.UUID(required=True)
    url = fields.String(required=True)
    created_by = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(
        required=True,
        metadata={"description": "signs every delivery; shown in this answer only, keep it"},
    )


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema), required=True)


class AttemptSchema(Schema):
    n = fields.Integer(required=True)
    at = fields.String(required=True)
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    ms = fields.Float()


class DeliverySchema(Schema):
    id = fields.UUID(required=True)
    webhook_id = fields.UUID(required=True)
    run_id = fields.UUID(allow_none=True)
    event = fields.String(required=True, metadata={"description": "run.completed, run.failed …"})
    status = fields.String(required=True, metadata={"description": "pending, delivered, failed"})
    attempts = fields.Integer(required=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(allow_none=True)
    attempt_log = fields.List(fields.Nested(AttemptSchema), data_key="attempt_log")


DeliveryPageSchema = page_of(DeliverySchema, "DeliveryPageSchema")
