from __future__ import annotations

from marshmallow import fields, validate

from provisioner.models import Role
from provisioner.schemas.common import Schema, StrictSchema

ROLE = validate.OneOf([r.value for r in Role])


class MemberAddSchema(StrictSchema):
    email = fields.Email(required=True, metadata={"description": "an existing account's email"})
    role = fields.String(
        load_default=Role.MEMBER.value,
        validate=ROLE,
        metadata={"description": "owner, admin (both steer) or member (reads)"},
    )


class MemberSchema(Schema):
    user_id = fields.UUID(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class MemberListSchema(Schema):
    items = fields.List(fields.Nested(MemberSchema), required=True)
