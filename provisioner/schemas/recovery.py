"""Bulk recovery (`POST /api/v1/provisioning/runs/continue`, the `continue-failed` command):
the filters that pick runs, and the answer."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from provisioner.orchestration.recovery import CONTINUABLE, MAX_LIMIT
from provisioner.schemas.common import Schema, SiteName, StrictSchema, UtcDateTime
from provisioner.schemas.run import StepField


class BulkContinueSchema(StrictSchema):
    engine_site = SiteName(
        load_default=None,
        allow_none=True,
        metadata={"description": "the name of the engine site the workspaces' runs use"},
    )
    status = fields.List(
        fields.String(validate=validate.OneOf(CONTINUABLE)),
        load_default=lambda: ["FAILED"],
        validate=validate.Length(min=1),
        metadata={"description": "the final statuses a continue acts on (default: FAILED)"},
    )
    failed_step = StepField(
        load_default=None,
        allow_none=True,
        metadata={"description": "a step that failed in the run (either vocabulary)"},
    )
    since = UtcDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "runs that finished at or after this (with its offset)"},
    )
    until = UtcDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "runs that finished before this (with its offset)"},
    )
    limit = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": "most runs continued by this call, the oldest failures first"},
    )
    dry_run = fields.Boolean(
        load_default=False,
        metadata={"description": "answer what would be continued or skipped; change nothing"},
    )

    @validates_schema
    def _a_range(self, data: dict[str, Any], **_: Any) -> None:
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and until < since:
            raise ValidationError("must not be before since", "until")


class BulkRunSchema(Schema):
    tenant_id = fields.UUID(required=True)
    run_id = fields.UUID(required=True)


class BulkSkippedSchema(BulkRunSchema):
    reason = fields.String(required=True)


class BulkContinueAnswerSchema(Schema):
    matched = fields.Integer(
        required=True, metadata={"description": "runs the filters match, beyond the limit too"}
    )
    continued = fields.List(fields.Nested(BulkRunSchema), required=True)
    skipped = fields.List(fields.Nested(BulkSkippedSchema), required=True)
    dry_run = fields.Boolean(required=True)
