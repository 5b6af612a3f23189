from __future__ import annotations

from marshmallow import Schema, fields


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    details = fields.Raw(metadata={"description": "per-field messages, or the current state"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)
