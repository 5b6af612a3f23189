"""The status document of a run (`GET …/status`), kept as a snapshot with every change.

Listens to `signals.changes_committing` (connected by the app factory, `connect()`): each
run a transaction changed gets its document written into `status_doc` in that same
transaction, so status reads and live streams serve it without building it per request.

`conditional_answer` serves it: a strong `ETag` from the run's `version` (the tenant's
live-state counter, which every change of the run advances), `304 Not Modified` for an
`If-None-Match` that holds it, without reading the document at all. What it read is kept
in the process's memory (`not_modified`), which answers the next such polls by itself. A
run from before migration 0005 has no snapshot yet: it is built once, answered and kept,
unless a change wrote a newer one meanwhile.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, g, jsonify, request
from sqlalchemy import Row, Select, bindparam, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import selectinload
from werkzeug.http import quote_etag

from provisioner import config, signals
from provisioner.api import access
from provisioner.api.not_modified import MEMORY, Memory
from provisioner.extensions import db
from provisioner.models import Membership, Run, Tenant, User
from provisioner.schemas import dialects
from provisioner.schemas.dialects import Dialect
from provisioner.schemas.run import status_document
from provisioner.security import tokens
from provisioner.signals import Changes


def connect() -> None:
    signals.changes_committing.connect(_snapshot)


def _snapshot(changes: Changes) -> None:
    for run in changes.runs:
        run.status_doc = status_document(run)


def conditional_answer(tenant_id: str, dialect: Dialect) -> Response | None:
    """The caller's view of the workspace's latest run in `dialect`, or 304; None when it
    has no run. Authenticates and authorizes too (`access.subject_of`, `admit`, `role_on`).

    One statement, outside a transaction: the token's user, the workspace, the caller's
    membership and the latest run's id and version, with the snapshot unless the request is
    conditional (then it is read only when the caller's tag is not the current one).
    """
    token = access.bearer_token()
    subject = access.subject_of(token)
    wanted = request.if_none_match
    memory: Memory | None = current_app.extensions.get(MEMORY)
    mark = memory.mark() if memory else 0  # before reading: see `Memory.confirm`
    params = {"user_id": subject.user_id, "tenant_id": access.id_or_none(tenant_id)}
    row = access.admit(subject, _read(_HEAD if wanted else _HEAD_AND_DOC, **params))
    if row.tenant_id is None:
        raise access.not_found("workspace")
    g.role = access.role_on(row.is_admin, row.role, access.Need.READ)
    if row.run_id is None:
        return None
    if memory:
        quoted = quote_etag(_tag(row.version))
        memory.confirm(mark, token, str(row.tenant_id), quoted, tokens.expires_at(token))
    if wanted:
        if wanted.contains(_tag(row.version)):  # strong comparison: a weak tag never matches
            return _tagged(Response(status=304), row.version)
        fresh = _read(_DOC, run_id=row.run_id)
        if fresh is None:  # the workspace was deleted meanwhile
            return None
        row = fresh
    doc = row.status_doc if row.status_doc is not None else _build_and_keep(row.run_id, row.version)
    return _tagged(jsonify(dialects.status_document(doc, dialect)), row.version)


def _read(statement: Select[Any], **params: Any) -> Row[Any] | None:
    """One row on the reads engine (autocommit, no pre-ping: `config.binds`); a connection
    the database dropped (it restarted) is replaced, and the read made again, once."""
    try:
        return _read_once(statement, params)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return _read_once(statement, params)


def _read_once(statement: Select[Any], params: dict[str, Any]) -> Row[Any] | None:
    with db.engines[config.READS_BIND].connect() as conn:
        return conn.execute(statement, params).first()


def _head(*columns: Any) -> Select[Any]:
    latest = (
        select(Run.id)
        .where(Run.tenant_id == Tenant.id)
        .order_by(Run.created_at.desc())
        .limit(1)
        .correlate(Tenant)
        .scalar_subquery()
    )
    member = (Membership.tenant_id == Tenant.id) & (Membership.user_id == User.id)
    return (
        select(
            User.disabled_at.is_not(None).label("disabled"),
            User.token_version,
            User.is_admin,
            Tenant.id.label("tenant_id"),
            Membership.role,
            Run.id.label("run_id"),
            Run.version,
            *columns,
        )
        .select_from(User)
        .outerjoin(Tenant, Tenant.id == bindparam("tenant_id"))
        .outerjoin(Membership, member)
        .outerjoin(Run, Run.id == latest)
        .where(User.id == bindparam("user_id"))
    )


# Built once: a status read only binds its parameters.
_HEAD = _head()
_HEAD_AND_DOC = _head(Run.status_doc)
_DOC = select(Run.id.label("run_id"), Run.version, Run.status_doc).where(
    Run.id == bindparam("run_id")
)


def _tag(version: int) -> str:
    return str(version)


def _tagged(response: Response, version: int) -> Response:
    response.set_etag(_tag(version))
    response.headers["Cache-Control"] = "private, no-cache"  # kept by the caller, asked again
    return response


def _build_and_keep(run_id: uuid.UUID, version: int) -> dict[str, Any]:
    """The document of a run without a snapshot, stored unless a change got there first."""
    run = db.session.execute(
        select(Run).where(Run.id == run_id).options(selectinload(Run.steps))
    ).scalar_one()
    doc = status_document(run)
    db.session.execute(
        update(Run)
        .where(Run.id == run_id, Run.version == version, Run.status_doc.is_(None))
        .values(status_doc=doc, updated_at=Run.updated_at)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return doc
