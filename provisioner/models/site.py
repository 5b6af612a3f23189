"""The registry of the engine sites this service created, and which workspace owns each.

A site job acts on a site only through this registry: `create_site` writes the intent
(state `creating`) before the engine host makes anything, an existing site is kept only
when the registry says this workspace's earlier attempt began making it, and
`backup_site` / `delete_site` act only on a site registered to their workspace.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from provisioner.extensions import Model
from provisioner.models.types import UTCDateTime, utcnow


class SiteState(StrEnum):
    CREATING = "creating"  # a create_site job is declared or under way
    ACTIVE = "active"  # made; the workspace uses it
    DELETING = "deleting"  # a delete_site job is under way
    DELETED = "deleted"  # dropped (archived on the engine host)
    FAILED = "failed"  # the create_site job failed or was cancelled; it may be retried


REGISTERED = (SiteState.ACTIVE, SiteState.DELETING)  # what backup/delete may act on


class Site(Model):
    __tablename__ = "sites"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[SiteState] = mapped_column(String(16))
    # The create_site job that makes (or made) it.
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("site_jobs.id", ondelete="SET NULL")
    )
    # Set (committed) just before an attempt starts making the site on the engine host: a
    # later attempt that finds the site there may keep it. Unset: any site found is foreign.
    creation_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
