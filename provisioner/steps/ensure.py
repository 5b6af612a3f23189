"""Ensure, don't create: the idiom every step uses to make a document exactly once.

Look the document up by its natural key, create it only if missing, and on "already
exists" look it up again. The whole exchange runs under a per-site lock on the key, so
parallel workers (even for different tenants on one site) cannot both create it; and
because the look-up comes first, a create whose answer was lost is found on the retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioner.engine import DuplicateEntry
from provisioner.engine.client import Filters
from provisioner.steps.base import StepContext


@dataclass(frozen=True)
class Ensured:
    name: str
    created: bool


def ensure(ctx: StepContext, doctype: str, key: Filters, doc: dict[str, Any]) -> Ensured:
    """Make sure one `doctype` matching `key` exists, creating it from `doc` if not."""
    with ctx.lock(f"{doctype}:{_key_label(key)}"):
        existing = ctx.engine.find(doctype, key)
        if existing:
            return Ensured(existing, created=False)
        try:
            made = ctx.engine.insert(doctype, doc)
        except DuplicateEntry:
            existing = ctx.engine.find(doctype, key)
            if existing is None:
                raise
            return Ensured(existing, created=False)
        return Ensured(made["name"], created=True)


def _key_label(key: Filters) -> str:
    items = key.items() if isinstance(key, dict) else ((f[0], f[-1]) for f in key)
    return ",".join(f"{field}={value}" for field, value in items)
