"""Ensure, don't create: the idiom every step uses to make a document exactly once.

Look the document up by its natural key, create it only if missing, and on "already
exists" look it up again. The whole exchange runs under a per-site lock on the key, so
parallel workers (even for different tenants on one site) cannot both create it; and
because the look-up comes first, a create whose answer was lost is found on the retry.

A document found may have drifted since it was made (a person disabled it): the fields it
`must` have are read with the look-up, and written back only when they differ, so running
a step again repairs it without touching what is still right.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provisioner.engine import DuplicateEntry
from provisioner.engine.client import Filters
from provisioner.steps.base import StepContext
from provisioner.steps.checks import differing

ENABLED = {"disabled": 0}


@dataclass(frozen=True)
class Ensured:
    doctype: str
    name: str
    created: bool
    restored: dict[str, Any] = field(default_factory=dict)  # fields written back

    @property
    def notes(self) -> list[str]:
        """What was written back, in plain words (nothing when nothing had drifted)."""
        if not self.restored:
            return []
        values = ", ".join(f"{k} = {v!r}" for k, v in self.restored.items())
        return [f"{self.doctype} {self.name} had drifted: set {values}"]


def ensure(
    ctx: StepContext,
    doctype: str,
    key: Filters,
    doc: dict[str, Any],
    must: Mapping[str, Any] | None = None,
) -> Ensured:
    """Make sure one `doctype` matching `key` exists, creating it from `doc` if not, and
    that it has the field values in `must`."""
    must = must or {}
    with ctx.lock(f"{doctype}:{_key_label(key)}"):
        existing = _look_up(ctx, doctype, key, must)
        if existing:
            return _keep(ctx, doctype, existing, must)
        try:
            made = ctx.engine.insert(doctype, {**doc, **must})
        except DuplicateEntry as exc:
            existing = _look_up(ctx, doctype, key, must)
            if existing is not None:
                return _keep(ctx, doctype, existing, must)
            if "name" in doc and ctx.engine.get_doc(doctype, doc["name"]) is not None:
                raise  # the name belongs to a document that does not match the key
            raise exc.still_in_flight(f"{doctype} {_key_label(key)}") from exc
        return Ensured(doctype, made["name"], created=True)


def _look_up(
    ctx: StepContext, doctype: str, key: Filters, must: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The oldest document matching `key`, with the fields it must have."""
    rows = ctx.engine.get_list(
        doctype, filters=key, fields=["name", *must], order_by="creation asc", limit=1
    )
    return rows[0] if rows else None


def _keep(
    ctx: StepContext, doctype: str, found: dict[str, Any], must: Mapping[str, Any]
) -> Ensured:
    changes = differing(found, must)
    if changes:
        ctx.engine.update(doctype, found["name"], changes)
    return Ensured(doctype, found["name"], created=False, restored=changes)


def _key_label(key: Filters) -> str:
    items = key.items() if isinstance(key, dict) else ((f[0], f[-1]) for f in key)
    return ",".join(f"{field}={value}" for field, value in items)
