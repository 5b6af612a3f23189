"""site lifecycle jobs and their event log

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ACTIVE = sa.text("status IN ('pending', 'running')")


def upgrade():
    op.create_table(
        "site_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("job_type", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_site_jobs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_jobs")),
    )
    op.create_index(
        "uq_site_jobs_one_active_per_tenant_type",
        "site_jobs",
        ["tenant_id", "job_type"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_index("ix_site_jobs_tenant_created", "site_jobs", ["tenant_id", "created_at"])
    op.create_index("ix_site_jobs_created", "site_jobs", ["created_at"])
    op.create_table(
        "site_job_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["site_jobs.id"],
            name=op.f("fk_site_job_events_job_id_site_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_job_events")),
    )
    op.create_index("ix_site_job_events_job_id_id", "site_job_events", ["job_id", "id"])


def downgrade():
    op.drop_index("ix_site_job_events_job_id_id", table_name="site_job_events")
    op.drop_table("site_job_events")
    op.drop_index("ix_site_jobs_created", table_name="site_jobs")
    op.drop_index("ix_site_jobs_tenant_created", table_name="site_jobs")
    op.drop_index(
        "uq_site_jobs_one_active_per_tenant_type",
        table_name="site_jobs",
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.drop_table("site_jobs")
