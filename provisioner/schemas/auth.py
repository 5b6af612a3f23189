from __future__ import annotations

from marshmallow import fields, validate

from provisioner.schemas.common import Schema, StrictSchema


class LoginSchema(StrictSchema):
    email = fields.Email(required=True)
    password = fields.String(required=True, load_only=True, validate=validate.Length(1, 256))


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})
