"""Provisioning of one workspace: start, status, retry, continue, skip, cancel, logs, runs.

Mounted at /api/v1/provisioning (Provisioner's dialect) and, for the platform's existing
page, at /api/provisioning (the page's dialect, `schemas.dialects`): the same views, bound
to the blueprint's dialect. Mutating calls write rows and publish work; workers do the work.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import select

from provisioner.api import status as snapshots
from provisioner.api.access import Need, actor, authenticated, load_json, load_query, tenant_for
from provisioner.api.dialects import accepted, speaking
from provisioner.api.errors import ApiError
from provisioner.api.limits import mutating
from provisioner.api.openapi import documented
from provisioner.api.pages import paginate
from provisioner.extensions import db
from provisioner.models import Run, RunEvent, Tenant, latest_run
from provisioner.orchestration import runs
from provisioner.schemas import dialects
from provisioner.schemas.common import PageQuerySchema
from provisioner.schemas.dialects import Dialect
from provisioner.schemas.run import (
    EmptySchema,
    LogQuerySchema,
    RetrySchema,
    RunEventSchema,
    RunLogSchema,
    RunPageSchema,
    RunStatusSchema,
    SkipSchema,
    StartSchema,
)


def blueprint(name: str, prefix: str, dialect: Dialect) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=prefix)
    for rule, view, methods in ROUTES:
        bp.add_url_rule(rule, view_func=speaking(dialect, view), methods=methods)
    return bp


@documented(body=StartSchema, response=RunStatusSchema, status=202)
@mutating
@authenticated
def start(dialect: Dialect, tenant_id: str):
    """Start a run (FULL_POS unless another plan is named)."""
    tenant = tenant_for(tenant_id, Need.STEER)
    data = load_json(StartSchema())
    plan, steps = data.pop("provisioning_type"), data.pop("steps")
    data["template"] = data["template"] or tenant.category
    run = runs.start(tenant, runs.StartRequest(plan=plan, steps=steps, options=data), actor())
    return _status(run.id, dialect), accepted(dialect)


@documented(response=RunStatusSchema, conditional=True)
def status(dialect: Dialect, tenant_id: str):
    """The status of the workspace's latest run (its snapshot; ETag and If-None-Match).

    The hottest route (every poller, the page's fallback): its one query authenticates,
    authorizes and reads (`status.conditional_answer`), instead of `@authenticated`."""
    answer = snapshots.conditional_answer(tenant_id, dialect)
    if answer is None:
        raise _no_run()
    return answer


@documented(body=RetrySchema, response=RunStatusSchema, status=202)
@mutating
@authenticated
def retry(dialect: Dialect, tenant_id: str):
    """Rerun the failed steps (or one named step), then the rest of the plan."""
    tenant = tenant_for(tenant_id, Need.STEER)
    data = load_json(RetrySchema())
    run = runs.resume(_latest(tenant).id, actor(), kind="retry", step_name=data["step"])
    return _status(run.id, dialect), accepted(dialect)


@documented(body=EmptySchema, response=RunStatusSchema, status=202)
@mutating
@authenticated
def continue_(dialect: Dialect, tenant_id: str):
    """Resume from the first failed or not-reached step."""
    tenant = tenant_for(tenant_id, Need.STEER)
    load_json(EmptySchema())
    run = runs.resume(_latest(tenant).id, actor(), kind="continue")
    return _status(run.id, dialect), accepted(dialect)


@documented(body=SkipSchema, response=RunStatusSchema)
@mutating
@authenticated
def skip_step(dialect: Dialect, tenant_id: str):
    """Skip an optional or non-critical step; the run goes on."""
    tenant = tenant_for(tenant_id, Need.STEER)
    data = load_json(SkipSchema())
    run = runs.skip(_latest(tenant).id, data["step"], actor())
    return _status(run.id, dialect)


@documented(body=EmptySchema, response=RunStatusSchema)
@mutating
@authenticated
def cancel(dialect: Dialect, tenant_id: str):
    """Cancel the active run: its tasks are revoked, no further step starts."""
    tenant = tenant_for(tenant_id, Need.STEER)
    load_json(EmptySchema())
    run = runs.cancel(_latest(tenant).id, actor())
    return _status(run.id, dialect)


@documented(query=LogQuerySchema, response=RunLogSchema)
@authenticated
def logs(dialect: Dialect, tenant_id: str):
    """The run's event log (on the page's routes: its step events, as the page's log)."""
    tenant = tenant_for(tenant_id, Need.READ)
    query = load_query(LogQuerySchema())
    run_id = query["run_id"] or _latest(tenant).id
    run = db.session.get(Run, run_id) if query["run_id"] else None
    if query["run_id"] and (run is None or run.tenant_id != tenant.id):
        raise ApiError(404, "not_found", "no such run")  # another workspace's: the same answer
    stmt = (
        select(RunEvent)
        .join(Run)
        .where(RunEvent.run_id == run_id, Run.tenant_id == tenant.id, RunEvent.id > query["after"])
    )
    if dialect == Dialect.PAGE:
        stmt = stmt.where(RunEvent.step.is_not(None))
    events = db.session.execute(stmt.order_by(RunEvent.id).limit(query["limit"])).scalars()
    if dialect == Dialect.PAGE:
        return {"logs": [dialects.page_log_entry(e) for e in _EVENTS.dump(events)]}
    return RunLogSchema().dump({"run_id": run_id, "events": events})


@documented(query=PageQuerySchema, response=RunPageSchema)
@authenticated
def run_list(dialect: Dialect, tenant_id: str):
    """The workspace's runs, newest first."""
    tenant = tenant_for(tenant_id, Need.READ)
    query = load_query(PageQuerySchema())
    stmt = select(Run).where(Run.tenant_id == tenant.id)
    page = RunPageSchema().dump(paginate(stmt, query, Run.created_at.desc()))
    return {**page, "items": [dialects.run_summary(r, dialect) for r in page["items"]]}


ROUTES = [
    ("/tenants/<tenant_id>/start", start, ["POST"]),
    ("/tenants/<tenant_id>/status", status, ["GET"]),
    ("/tenants/<tenant_id>/retry", retry, ["POST"]),
    ("/tenants/<tenant_id>/continue", continue_, ["POST"]),
    ("/tenants/<tenant_id>/skip-step", skip_step, ["POST"]),
    ("/tenants/<tenant_id>/cancel", cancel, ["POST"]),
    ("/tenants/<tenant_id>/logs", logs, ["GET"]),
    ("/tenants/<tenant_id>/runs", run_list, ["GET"]),
]


def _latest(tenant: Tenant) -> Run:
    run = latest_run(tenant.id)
    if run is None:
        raise _no_run()
    return run


def _no_run() -> ApiError:
    return ApiError(404, "no_run", "this workspace has not been provisioned yet")


def _status(run_id: object, dialect: Dialect) -> dict[str, Any]:
    """The run's status document as the command just committed it (one query)."""
    doc: dict[str, Any] = db.session.execute(
        select(Run.status_doc).where(Run.id == run_id)
    ).scalar_one()
    return dialects.status_document(doc, dialect)


_EVENTS = RunEventSchema(many=True)
