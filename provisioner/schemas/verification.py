from __future__ import annotations

from marshmallow import fields

from provisioner.models import VerificationStatus
from provisioner.schemas.common import Schema

CHECK_STATES = "ok, missing (not there), changed (a field the point of sale needs differs), "
CHECK_STATES += "unknown (the engine could not be read; the message says why)"


class CheckSchema(Schema):
    step = fields.String(required=True, metadata={"description": "the step that made it"})
    doctype = fields.String(required=True)
    name = fields.String(required=True)
    state = fields.String(required=True, metadata={"description": CHECK_STATES})
    expected = fields.Raw(allow_none=True, metadata={"description": "fields it must have"})
    actual = fields.Raw(allow_none=True, metadata={"description": "the same fields, as read"})
    message = fields.String(required=True, metadata={"description": "in plain words"})


class VerificationSchema(Schema):
    id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    status = fields.String(
        required=True,
        metadata={
            "description": f"{', '.join(VerificationStatus)}: drifted when a document is missing "
            "or changed (even if others could not be read); failed when the engine could not "
            "be read and nothing drifted"
        },
    )
    requested_by = fields.String(required=True)
    task_id = fields.String(allow_none=True, metadata={"description": "the Celery task"})
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    checked_at = fields.DateTime(allow_none=True)
    engine_reads = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "what could not be read"})
    checks = fields.List(
        fields.Nested(CheckSchema), metadata={"description": "one per document; empty until done"}
    )


class VerifyAnswerSchema(Schema):
    verification = fields.Nested(VerificationSchema, required=True)
    already_active = fields.Boolean(
        required=True,
        metadata={
            "description": "true when a verification of this workspace was already pending "
            "or running: that one is answered and no other is started"
        },
    )
