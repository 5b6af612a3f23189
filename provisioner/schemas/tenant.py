from __future__ import annotations

import re

from marshmallow import ValidationError, fields, validate, validates

from provisioner import catalog
from provisioner.schemas.common import Schema, SiteName, StrictSchema, single_line

# What ERPNext accepts in a company name without surprises.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 &.,'()\-]*[A-Za-z0-9.)]$")


class TenantCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(2, 120))
    country_code = fields.String(required=True)
    currency = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Z]{3}$"))
    engine = fields.String(load_default="erpnext", validate=validate.OneOf(["erpnext"]))
    admin_email = fields.Email(required=True)
    admin_name = fields.String(required=True, validate=[validate.Length(1, 140), single_line])
    admin_password = fields.String(required=True, load_only=True, validate=validate.Length(8, 256))
    category = fields.String(load_default=None)
    provision = fields.Boolean(load_default=True)

    @validates("name")
    def _name(self, value: str, **_: object) -> None:
        if not NAME.match(value) or "  " in value:
            raise ValidationError(
                "use letters, digits, spaces and & . , ' ( ) -, "
                "starting and ending with a letter or digit"
            )

    @validates("country_code")
    def _country(self, value: str, **_: object) -> None:
        if value not in catalog.countries():
            raise ValidationError(f"unsupported country; one of {', '.join(catalog.countries())}")

    @validates("category")
    def _category(self, value: str | None, **_: object) -> None:
        if value is not None and value not in catalog.templates():
            raise ValidationError(f"unknown category; one of {', '.join(catalog.templates())}")


class TenantSchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    slug = fields.String(required=True)
    country_code = fields.String(required=True)
    currency = fields.String(required=True)
    category = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "pending, active, archived"})
    provisioning_status = fields.String(required=True)
    has_own_site = fields.Boolean(required=True)
    engine_site = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class EngineConnectionSchema(StrictSchema):
    """A workspace's own ERPNext site; the key and secret are stored encrypted, never shown.

    Workspace owners may pick only the platform's engines (ENGINE_ALLOWED_HOSTS and the
    default engine's host); only platform admins may name another, with a public address.
    No userinfo, query or fragment; never the shared site or another workspace's."""

    url = fields.Url(
        required=True,
        require_tld=False,
        schemes={"http", "https"},
        validate=validate.Length(max=255),
        metadata={"description": "http(s)://host[:port][/path]: no user, query or fragment"},
    )
    api_key = fields.String(
        required=True, load_only=True, validate=[validate.Length(1, 140), single_line]
    )
    api_secret = fields.String(
        required=True, load_only=True, validate=[validate.Length(1, 140), single_line]
    )
    site = SiteName(
        load_default=None,
        metadata={"description": "the site name sent as Host (default: the URL's host)"},
    )


class EngineSchema(Schema):
    own_site = fields.Boolean(required=True)
    url = fields.String(allow_none=True)
    site = fields.String(allow_none=True)


class AuditEntrySchema(Schema):
    id = fields.Integer(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    target = fields.String(allow_none=True)
    details = fields.Dict(allow_none=True)
    created_at = fields.DateTime(required=True)


class TenantCreatedSchema(Schema):
    tenant = fields.Nested(TenantSchema, required=True)
    provisioning = fields.Raw(
        allow_none=True, metadata={"description": "the run status, or null if not started"}
    )
    provisioning_note = fields.String(metadata={"description": "why provisioning is waiting"})
