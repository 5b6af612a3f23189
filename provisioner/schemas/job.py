from __future__ import annotations

from typing import Any

from marshmallow import fields, post_dump, validate

from provisioner.models import JobStatus, JobType
from provisioner.schemas.common import PageQuerySchema, Schema, StrictSchema, page_of

JOB_TYPE = validate.OneOf([t.value for t in JobType])
JOB_STATUS = validate.OneOf([s.value for s in JobStatus])


class JobCreateSchema(StrictSchema):
    tenant_id = fields.UUID(
        load_default=None,
        metadata={"description": "optional when the caller belongs to exactly one workspace"},
    )
    job_type = fields.String(required=True, validate=JOB_TYPE)


class JobQuerySchema(PageQuerySchema):
    tenant_id = fields.UUID(load_default=None)
    job_type = fields.String(load_default=None, validate=JOB_TYPE)
    status = fields.String(load_default=None, validate=JOB_STATUS)


class JobSchema(Schema):
    id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    job_type = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": ", ".join(JobStatus)})
    progress = fields.Integer(required=True)
    message = fields.String(allow_none=True)
    error = fields.Dict(allow_none=True, metadata={"description": "class, message, output…"})
    result = fields.Dict(allow_none=True, metadata={"description": "site and url; backup files"})
    attempts = fields.Integer(required=True)
    task_id = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(
        dump_only=True,
        allow_none=True,
        metadata={"description": "the platform's name of finished_at: when the job ended"},
    )

    @post_dump
    def _completed_at(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["completed_at"] = data.get("finished_at")
        return data


class JobEventSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    message = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class JobDetailSchema(JobSchema):
    events = fields.List(
        fields.Nested(JobEventSchema),
        metadata={"description": "the job's log: steps, output lines, retries (the latest)"},
    )


JobPageSchema = page_of(JobSchema, "JobPageSchema")
