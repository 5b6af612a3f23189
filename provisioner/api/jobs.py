"""Site lifecycle jobs: create, list, read, retry, cancel (/api/v1/provisioning/jobs).

Mutating calls write rows and publish a task; workers run the job through the site backend.
"""

from __future__ import annotations

import uuid

from flask import Blueprint
from marshmallow import ValidationError
from sqlalchemy import select

from provisioner.api.access import (
    Need,
    actor,
    authenticated,
    current_user,
    load_json,
    load_query,
    tenant_for,
)
from provisioner.api.errors import ApiError
from provisioner.api.limits import mutating
from provisioner.api.openapi import documented
from provisioner.api.pages import paginate
from provisioner.extensions import db
from provisioner.models import JobType, Membership, SiteJob, SiteJobEvent
from provisioner.orchestration import jobs
from provisioner.schemas.job import (
    JobCreateSchema,
    JobDetailSchema,
    JobEventSchema,
    JobPageSchema,
    JobQuerySchema,
    JobSchema,
)
from provisioner.schemas.run import EmptySchema

EVENTS_SHOWN = 500  # the latest lines of a job's log in its detail view

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/provisioning/jobs")


@documented(body=JobCreateSchema, response=JobSchema, status=201)
@bp.post("")
@mutating
@authenticated
def create():
    """Start a site job (create_site, delete_site, backup_site) for a workspace (by default
    the caller's, when the caller belongs to exactly one)."""
    try:
        data, errors = load_json(JobCreateSchema()), {}
    except ValidationError as exc:
        data, errors = dict(exc.valid_data or {}), exc.normalized_messages()
    if data.get("tenant_id") is None and "tenant_id" not in errors:
        data["tenant_id"] = _only_workspace()
        if data["tenant_id"] is None:
            errors["tenant_id"] = ["required unless you belong to exactly one workspace"]
    if errors:
        raise ValidationError(errors)
    tenant = tenant_for(str(data["tenant_id"]), Need.STEER)
    job = jobs.create(tenant, JobType(data["job_type"]), actor())
    return JobSchema().dump(job), 201


@documented(query=JobQuerySchema, response=JobPageSchema)
@bp.get("")
@authenticated
def index():
    """The site jobs of the workspaces the caller may see, newest first."""
    query = load_query(JobQuerySchema())
    stmt = select(SiteJob)
    user = current_user()
    if not user.is_admin:
        stmt = stmt.join(Membership, Membership.tenant_id == SiteJob.tenant_id).where(
            Membership.user_id == user.id
        )
    for name in ("tenant_id", "job_type", "status"):
        if query[name] is not None:
            stmt = stmt.where(getattr(SiteJob, name) == query[name])
    return JobPageSchema().dump(paginate(stmt, query, SiteJob.created_at.desc(), SiteJob.id))


@documented(response=JobDetailSchema)
@bp.get("/<job_id>")
@authenticated
def show(job_id: str):
    """One job with the latest lines of its log."""
    job = _job_for(job_id, Need.READ)
    latest = (
        select(SiteJobEvent)
        .where(SiteJobEvent.job_id == job.id)
        .order_by(SiteJobEvent.id.desc())
        .limit(EVENTS_SHOWN)
    )
    events = list(db.session.execute(latest).scalars())[::-1]
    return {**JobSchema().dump(job), "events": JobEventSchema(many=True).dump(events)}


@documented(body=EmptySchema, response=JobSchema, status=202)
@bp.post("/<job_id>/retry")
@mutating
@authenticated
def retry(job_id: str):
    """Run a failed or completed job again (409 otherwise, with its status)."""
    job = _job_for(job_id, Need.STEER)
    load_json(EmptySchema())
    job = jobs.retry(job.id, actor())
    return JobSchema().dump(job), 202


@documented(body=EmptySchema, response=JobSchema)
@bp.post("/<job_id>/cancel")
@mutating
@authenticated
def cancel(job_id: str):
    """Cancel a pending or running job: its task is revoked, the site left as it is."""
    job = _job_for(job_id, Need.STEER)
    load_json(EmptySchema())
    job = jobs.cancel(job.id, actor())
    return JobSchema().dump(job)


def _only_workspace() -> uuid.UUID | None:
    """The one workspace the caller is a member of, if there is exactly one."""
    mine = db.session.execute(
        select(Membership.tenant_id).where(Membership.user_id == current_user().id).limit(2)
    ).scalars()
    ids = list(mine)
    return ids[0] if len(ids) == 1 else None


def _job_for(job_id: str, need: Need) -> SiteJob:
    """The job if the caller may see its workspace (404 otherwise) and do `need` (403)."""
    try:
        job = db.session.get(SiteJob, uuid.UUID(job_id))
    except ValueError:
        job = None
    if job is None:
        raise _no_such_job()
    try:
        tenant_for(str(job.tenant_id), need)
    except ApiError as exc:
        if exc.status == 404:
            raise _no_such_job() from None
        raise
    return job


def _no_such_job() -> ApiError:
    return ApiError(404, "not_found", "no such job")
