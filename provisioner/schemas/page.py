"""The shapes the page's dialect answers (see `schemas.dialects`), for the OpenAPI document.

The answers themselves are Provisioner's documents put through `schemas.dialects`; these
schemas describe what that makes of them.
"""

from __future__ import annotations

from marshmallow import fields

from provisioner.schemas.common import Schema, page_of
from provisioner.schemas.run import RunStatusSchema, RunSummarySchema

_PROGRESS = {"description": "0-100, a float on these routes"}
_STEP = {"description": "the page's step identifier, e.g. step_2_company"}


class PageRunSummarySchema(RunSummarySchema):
    current_step = fields.String(allow_none=True, metadata=_STEP)
    progress = fields.Float(required=True, metadata=_PROGRESS)  # type: ignore[assignment]


class PageStatusSchema(RunStatusSchema):
    status = fields.String(
        required=True, metadata={"description": "a queued run (PENDING on v1) is IN_PROGRESS"}
    )
    current_step = fields.String(allow_none=True, metadata=_STEP)
    progress = fields.Float(required=True, metadata=_PROGRESS)  # type: ignore[assignment]


class PageLogEntrySchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "pass as `after` for more"})
    step = fields.String(required=True, metadata=_STEP)
    kind = fields.String(required=True, metadata={"description": "step_started, step_failed…"})
    status = fields.String(required=True, metadata={"description": "the step's status then"})
    attempt = fields.Integer(allow_none=True)
    message = fields.String(allow_none=True)
    completed_at = fields.DateTime(required=True, metadata={"description": "when it happened"})
    duration_ms = fields.Integer(allow_none=True)


class PageLogSchema(Schema):
    logs = fields.List(
        fields.Nested(PageLogEntrySchema),
        required=True,
        metadata={"description": "one entry per step event, oldest first"},
    )


PageRunPageSchema = page_of(PageRunSummarySchema, "PageRunPageSchema")
