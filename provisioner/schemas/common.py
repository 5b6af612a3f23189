from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from provisioner.security.hostnames import RULE, is_hostname

MAX_PAGE_SIZE = 100
MAX_ID = 2**63 - 1  # the database's bigint: a larger number is not an id of anything
NUL = "must not contain NUL characters"


class StrictSchema(Schema):
    """Request bodies and queries: unknown fields are refused by name (marshmallow's
    default, kept), and so is a NUL character in any string, at any depth (PostgreSQL
    cannot store one)."""

    @pre_load
    def _no_nul(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            bad = {str(key): [NUL] for key, value in data.items() if _holds_nul(value)}
            if bad:
                raise ValidationError(bad)
        return data


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_holds_nul, value))
    return False


def single_line(value: str) -> None:
    """A validator: no control characters (CR, LF, tabs, NUL …) in a one-line text."""
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValidationError("must not contain control characters (line breaks, tabs …)")


class SiteName(fields.String):
    """An engine site name: a host name, compared and stored in lowercase."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        name = super()._deserialize(value, attr, data, **kwargs).lower()
        if not is_hostname(name):
            raise ValidationError(f"not a valid site name: use {RULE}")
        return name


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 date and time with its offset (a naive one is refused), loaded in UTC; one
    that UTC cannot represent (year 1 east of Greenwich …) is refused too."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("is out of range") from None


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
