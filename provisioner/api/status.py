"""The status document of a run (`GET …/status`), kept as a snapshot with every change.

Listens to `signals.changes_committing` (connected by the app factory, `connect()`): each
run a transaction changed gets its document written into `status_doc` in that same
transaction, so status reads and live streams serve it without building it per request.

`conditional_answer` serves it: a strong `ETag` from the run's `version` (the tenant's
live-state counter, which every change of the run advances), `304 Not Modified` for an
`If-None-Match` that holds it, without reading the document at all. A run from before
migration 0005 has no snapshot yet: it is built once, answered and kept, unless a change
wrote a newer one meanwhile.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import selectinload

from provisioner import signals
from provisioner.extensions import db
from provisioner.models import Run
from provisioner.schemas import dialects
from provisioner.schemas.dialects import Dialect
from provisioner.schemas.run import status_document
from provisioner.signals import Changes


def connect() -> None:
    signals.changes_committing.connect(_snapshot)


def _snapshot(changes: Changes) -> None:
    for run in changes.runs:
        run.status_doc = status_document(run)


def conditional_answer(tenant_id: uuid.UUID, dialect: Dialect) -> Response | None:
    """The tenant's latest run's status in `dialect`, or 304; None when it has no run.

    One query for the run's id and version; the snapshot comes with it unless the request
    is conditional, and then only when the caller's tag is not the current one.
    """
    wanted = request.if_none_match
    latest = _LATEST_HEAD if wanted else _LATEST_DOC
    head = db.session.execute(latest, {"tenant_id": tenant_id}).first()
    if head is None:
        return None
    if wanted:
        if wanted.contains(_tag(head.version)):  # strong comparison: a weak tag never matches
            return _tagged(Response(status=304), head.version)
        head = db.session.execute(_DOC, {"run_id": head.id}).one()
    doc = head.status_doc if head.status_doc is not None else _build_and_keep(head.id, head.version)
    return _tagged(jsonify(dialects.status_document(doc, dialect)), head.version)


def _latest(*columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .where(Run.tenant_id == bindparam("tenant_id"))
        .order_by(Run.created_at.desc())
        .limit(1)
    )


# Built once: a status read only binds its parameters.
_LATEST_HEAD = _latest(Run.id, Run.version)
_LATEST_DOC = _latest(Run.id, Run.version, Run.status_doc)
_DOC = select(Run.id, Run.version, Run.status_doc).where(Run.id == bindparam("run_id"))


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
