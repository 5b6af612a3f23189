from __future__ import annotations

from marshmallow import Schema, fields, validate

MAX_PAGE_SIZE = 100


class StrictSchema(Schema):
    """Request bodies: unknown fields are refused by name (marshmallow's default, kept)."""


class PageQuerySchema(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class PageSchema(Schema):
    page = fields.Integer(required=True)
    size = fields.Integer(required=True)
    total = fields.Integer(required=True)


def page_of(item_schema: type[Schema], name: str) -> type[Schema]:
    """A page schema {page, size, total, items: [item]} for one item schema."""
    return type(name, (PageSchema,), {"items": fields.List(fields.Nested(item_schema))})
