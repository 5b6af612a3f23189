"""live state: each run's status snapshot and version, the tenant's live-state counter

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "tenants", sa.Column("live_version", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "provisioning_runs",
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "provisioning_runs",
        sa.Column(
            "status_doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )


def downgrade():
    op.drop_column("provisioning_runs", "status_doc")
    op.drop_column("provisioning_runs", "version")
    op.drop_column("tenants", "live_version")
