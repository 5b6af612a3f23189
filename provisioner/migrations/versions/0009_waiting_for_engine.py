"""steps that wait for their engine site (issue 13)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

WAITING = sa.text("status = 'waiting'")


def upgrade():
    op.add_column(
        "provisioning_steps", sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_provisioning_steps_waiting",
        "provisioning_steps",
        ["next_attempt_at"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def downgrade():
    op.drop_index("ix_provisioning_steps_waiting", table_name="provisioning_steps")
    op.drop_column("provisioning_steps", "waiting_since")
