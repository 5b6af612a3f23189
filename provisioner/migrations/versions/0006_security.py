"""sites registry, account state and token versions (issue 11)

Revision ID: 0006
Revises: 0005
"""

import json
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("creation_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_sites_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["site_jobs.id"], name=op.f("fk_sites_job_id_site_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("name", name=op.f("uq_sites_name")),
    )
    op.create_index(op.f("ix_sites_tenant_id"), "sites", ["tenant_id"])
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "users", sa.Column("token_version", sa.Integer(), nullable=False, server_default="0")
    )
    _register_sites_made_by_jobs()


def _register_sites_made_by_jobs():
    """Sites made by completed create_site jobs before the registry existed."""
    conn = op.get_bind()
    made = conn.execute(
        sa.text(
            "SELECT j.id, j.tenant_id, j.result, t.engine_site, t.status FROM site_jobs j "
            "JOIN tenants t ON t.id = j.tenant_id "
            "WHERE j.job_type = 'create_site' AND j.status = 'completed' "
            "ORDER BY j.finished_at"
        )
    ).fetchall()
    rows = {}
    for job_id, tenant_id, result, engine_site, tenant_status in made:
        site = (json.loads(result) if isinstance(result, str) else result or {}).get("site")
        if site and site == engine_site:
            state = "deleted" if tenant_status == "archived" else "active"
            rows[site] = (job_id, tenant_id, state)
    now = datetime.now(UTC)
    sites = sa.table(
        "sites",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("state", sa.String()),
        sa.column("job_id", sa.Uuid()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    if rows:
        op.bulk_insert(
            sites,
            [
                {"id": uuid.uuid4(), "name": name, "tenant_id": _uuid(tenant_id), "state": state,
                 "job_id": _uuid(job_id), "created_at": now, "updated_at": now}
                for name, (job_id, tenant_id, state) in rows.items()
            ],
        )  # fmt: skip


def _uuid(value):
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def downgrade():
    op.drop_column("users", "token_version")
    op.drop_column("users", "disabled_at")
    op.drop_index(op.f("ix_sites_tenant_id"), table_name="sites")
    op.drop_table("sites")
