"""Verify and repair a workspace: is what provisioning made still there and right, and mend it.

Mounted at /api/v1/provisioning beside the provisioning routes, with their roles: members
read, owners and admins (and platform admins) steer. Verifications and repairs run in
workers; these routes declare them and answer at once.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import select

from provisioner.api.access import Need, actor, authenticated, load_json, tenant_for
from provisioner.api.errors import ApiError
from provisioner.api.limits import mutating
from provisioner.api.openapi import documented
from provisioner.extensions import db
from provisioner.models import Run, latest_verification
from provisioner.orchestration import verifications
from provisioner.schemas.run import EmptySchema, RunStatusSchema
from provisioner.schemas.verification import VerificationSchema, VerifyAnswerSchema

bp = Blueprint("verification", __name__, url_prefix="/api/v1/provisioning/tenants/<tenant_id>")


@documented(body=EmptySchema, response=VerifyAnswerSchema, status=202)
@bp.post("/verify")
@mutating
@authenticated
def verify(tenant_id: str):
    """Verify the workspace's documents in the engine (or answer the verification under way)."""
    tenant = tenant_for(tenant_id, Need.STEER)
    load_json(EmptySchema())
    requested = verifications.request(tenant, actor())
    answer = {"verification": requested.verification, "already_active": not requested.created}
    return VerifyAnswerSchema().dump(answer), 202


@documented(response=VerificationSchema)
@bp.get("/verification")
@authenticated
def verification(tenant_id: str):
    """The workspace's latest verification, with one check per document."""
    tenant = tenant_for(tenant_id, Need.READ)
    latest = latest_verification(tenant.id)
    if latest is None:
        raise ApiError(404, "not_verified", "this workspace has not been verified yet")
    return VerificationSchema().dump(latest)


@documented(body=EmptySchema, response=RunStatusSchema, status=202)
@bp.post("/repair")
@mutating
@authenticated
def repair(tenant_id: str):
    """Start a REPAIR run of exactly the steps the latest verification found drifted."""
    tenant = tenant_for(tenant_id, Need.STEER)
    load_json(EmptySchema())
    try:
        run = verifications.repair(tenant, actor())
    except verifications.NothingToRepair as exc:
        raise ApiError(409, "nothing_to_repair", exc.message, exc.details) from None
    return _status(run.id), 202


def _status(run_id: object) -> dict[str, Any]:
    """The new run's status document as its start committed it."""
    doc: dict[str, Any] = db.session.execute(
        select(Run.status_doc).where(Run.id == run_id)
    ).scalar_one()
    return doc
