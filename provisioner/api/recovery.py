"""Bulk recovery for operators: `POST /api/v1/provisioning/runs/continue` (platform admins).

The filters pick runs across workspaces; `orchestration.recovery` continues them one by one
with the single continue. Rate-limited per admin (BULK_CONTINUE_RATE_LIMIT); the workspaces'
own budgets are not spent, since no workspace's caller asked.
"""

from __future__ import annotations

from flask import Blueprint

from provisioner.api import limits
from provisioner.api.access import actor, authenticated, load_json, platform_admin
from provisioner.api.limits import mutating
from provisioner.api.openapi import documented
from provisioner.orchestration import recovery
from provisioner.schemas.recovery import BulkContinueAnswerSchema, BulkContinueSchema

bp = Blueprint("recovery", __name__, url_prefix="/api/v1/provisioning/runs")


@documented(body=BulkContinueSchema, response=BulkContinueAnswerSchema)
@bp.post("/continue")
@mutating
@authenticated
def continue_runs():
    """Continue the latest run of every workspace that matches the filters (platform admins)."""
    admin = platform_admin()
    data = load_json(BulkContinueSchema())
    limits.spend_bulk(admin.id)
    dry_run = data.pop("dry_run")
    report = recovery.continue_runs(recovery.Filters(**data), actor(), dry_run=dry_run)
    return BulkContinueAnswerSchema().dump(report)
