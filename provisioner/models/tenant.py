"""A workspace of the platform, and where its ERPNext company lives."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioner.extensions import Model
from provisioner.models.status import ProvisioningStatus, TenantStatus
from provisioner.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from provisioner.models.user import Membership


class Tenant(Model):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The ERPNext company is named after the workspace, so the name is unique (via its slug).
    name: Mapped[str] = mapped_column(String(140))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    country_code: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[TenantStatus] = mapped_column(String(16), default=TenantStatus.PENDING)
    provisioning_status: Mapped[ProvisioningStatus] = mapped_column(
        String(20), default=ProvisioningStatus.NOT_PROVISIONED
    )
    # The tenant's own engine site (made by a create_site job); empty = the shared default.
    engine_url: Mapped[str | None] = mapped_column(String(255))
    engine_site: Mapped[str | None] = mapped_column(String(255))
    engine_api_key_enc: Mapped[str | None] = mapped_column(Text)
    engine_api_secret_enc: Mapped[str | None] = mapped_column(Text)
    # Counts every change of the tenant's runs: the version of what its page shows live.
    live_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan"
    )

    @property
    def has_own_site(self) -> bool:
        return bool(self.engine_url and self.engine_api_key_enc)
