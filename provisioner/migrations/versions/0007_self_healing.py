"""no change (a placeholder that landed empty; issue 13's schema is in 0009 and later)

Revision ID: 0007
Revises: 0006
"""

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
