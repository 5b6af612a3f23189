"""verifications of provisioned workspaces (issue 14)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ACTIVE = sa.text("status IN ('pending', 'running')")
LATEST = sa.text("latest")


def upgrade():
    op.create_table(
        "verifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("latest", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(length=254), nullable=False),
        sa.Column("after_run_id", sa.Uuid(), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("checks", JSON, nullable=True),
        sa.Column("tally", JSON, nullable=True),
        sa.Column("engine_reads", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_verifications_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["after_run_id"],
            ["provisioning_runs.id"],
            name=op.f("fk_verifications_after_run_id_provisioning_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["provisioning_runs.id"],
            name=op.f("fk_verifications_run_id_provisioning_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    op.create_index(
        "uq_verifications_one_active_per_tenant",
        "verifications",
        ["tenant_id"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_index(
        "uq_verifications_latest_per_tenant",
        "verifications",
        ["tenant_id"],
        unique=True,
        postgresql_where=LATEST,
        sqlite_where=LATEST,
    )
    op.create_index("ix_verifications_tenant_created", "verifications", ["tenant_id", "created_at"])


def downgrade():
    op.drop_index("ix_verifications_tenant_created", table_name="verifications")
    op.drop_index(
        "uq_verifications_latest_per_tenant",
        table_name="verifications",
        postgresql_where=LATEST,
        sqlite_where=LATEST,
    )
    op.drop_index(
        "uq_verifications_one_active_per_tenant",
        table_name="verifications",
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.drop_table("verifications")
