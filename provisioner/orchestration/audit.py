"""The audit log: one row per action a person or program took on a workspace."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from provisioner.extensions import db
from provisioner.models import AuditEntry, Tenant


def record(
    tenant: Tenant, actor: str, action: str, target: Any = None, **details: Any
) -> AuditEntry:
    """Add an entry to the current transaction (committed with the action it records)."""
    entry = AuditEntry(
        tenant_id=tenant.id,
        actor=actor,
        action=action,
        target=None if target is None else str(target),
        details=details or None,
    )
    db.session.add(entry)
    return entry


def forget(tenant: Tenant, target: Any) -> None:
    """Take back the entries of an action that was undone (a start that could not publish)."""
    db.session.execute(
        delete(AuditEntry).where(
            AuditEntry.tenant_id == tenant.id, AuditEntry.target == str(target)
        )
    )
