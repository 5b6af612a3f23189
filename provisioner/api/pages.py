"""One page of a listing, with the total count: what every `…?page=&size=` route answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, func, select

from provisioner.extensions import db


def paginate(stmt: Select[Any], query: Mapping[str, Any], *order_by: Any) -> dict[str, Any]:
    """`{page, size, total, items}` for `stmt`, ordered by `order_by`, for a page query."""
    page, size = query["page"], query["size"]
    total = db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    items = db.session.execute(
        stmt.order_by(*order_by).offset((page - 1) * size).limit(size)
    ).scalars()
    return {"page": page, "size": size, "total": total, "items": items}
