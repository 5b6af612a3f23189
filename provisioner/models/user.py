"""People who sign in, and what they may do on which workspace."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from provisioner.extensions import Model
from provisioner.models.status import Role
from provisioner.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from provisioner.models.tenant import Tenant


class User(Model):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(140), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)  # platform admin: every tenant
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A disabled user cannot sign in, and their tokens stop working.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # In every token (`ver`); bumped to end all of the user's tokens at once.
    token_version: Mapped[int] = mapped_column(default=0)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user")

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def set_password(self, password: str) -> None:
        # werkzeug's default is scrypt, a memory-hard KDF, with a random salt per hash.
        self.password_hash = generate_password_hash(password)
        self.revoke_tokens()

    def revoke_tokens(self) -> None:
        """End every token issued so far (they carry the old version)."""
        self.token_version = (self.token_version or 0) + 1

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class Membership(Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    tenant: Mapped[Tenant] = relationship(back_populates="memberships")
