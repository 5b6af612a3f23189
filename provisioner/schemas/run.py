from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from provisioner import catalog
from provisioner.models import Run, RunStep, StepStatus
from provisioner.models.status import ERRORED_STEP_STATUSES
from provisioner.orchestration.plans import PLAN_NAMES
from provisioner.schemas.common import MAX_ID, Schema, StrictSchema, page_of
from provisioner.schemas.dialects import PAGE_STEP_IDS, step_name
from provisioner.steps import BY_NAME, STEP_NAMES


class StepField(fields.String):
    """A step named in either vocabulary (`create_company` or `step_2_company`); it loads
    as Provisioner's name."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.OneOf([*STEP_NAMES, *PAGE_STEP_IDS.values()]), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return step_name(super()._deserialize(value, attr, data, **kwargs))


class StartSchema(StrictSchema):
    provisioning_type = fields.String(load_default="FULL_POS", validate=validate.OneOf(PLAN_NAMES))
    include_demo_data = fields.Boolean(load_default=False)
    pos_store_enabled = fields.Boolean(load_default=True)
    country_template = fields.Boolean(
        load_default=True,
        metadata={"description": "ask for the country's chart of accounts (else Standard)"},
    )
    template = fields.String(
        load_default=None,
        validate=validate.OneOf(sorted(catalog.templates())),
        metadata={"description": "business template; defaults to the tenant's category"},
    )
    steps = fields.List(
        StepField(),
        load_default=None,
        metadata={"description": "the steps of a CUSTOM plan"},
    )


class RetrySchema(StrictSchema):
    step = StepField(load_default=None, allow_none=True)


class SkipSchema(StrictSchema):
    step = StepField(required=True)


class EmptySchema(StrictSchema):
    """No fields: continue and cancel take no body (an empty object is fine)."""


class EngineErrorSchema(Schema):
    status = fields.Integer(allow_none=True)
    exc_type = fields.String(allow_none=True)
    message = fields.String(allow_none=True)
    request = fields.String(allow_none=True)


class StepErrorSchema(Schema):
    class_ = fields.String(data_key="class", attribute="class")
    message = fields.String()
    engine = fields.Nested(EngineErrorSchema)


class StepSchema(Schema):
    name = fields.String(required=True)
    title = fields.Method("_title")
    position = fields.Integer(required=True)
    status = fields.String(required=True)
    critical = fields.Boolean(required=True)
    optional = fields.Boolean(required=True)
    planned = fields.Boolean(required=True)
    attempts = fields.Integer(required=True)
    manual_attempts = fields.Integer(required=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    note = fields.String(allow_none=True)
    error = fields.Nested(StepErrorSchema, allow_none=True)
    result = fields.Dict(allow_none=True)

    def _title(self, step: RunStep) -> str:
        return BY_NAME[step.name].title


class RunErrorSchema(Schema):
    step = fields.String(required=True)
    status = fields.String(required=True)
    message = fields.String(required=True)
    engine = fields.Nested(EngineErrorSchema, allow_none=True)


class RunSummarySchema(Schema):
    run_id = fields.UUID(attribute="id", required=True)
    tenant_id = fields.UUID(required=True)
    plan = fields.String(required=True)
    status = fields.String(required=True)
    current_step = fields.String(allow_none=True)
    progress = fields.Integer(required=True)
    options = fields.Dict()
    started_by = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


RunPageSchema = page_of(RunSummarySchema, "RunPageSchema")


class WaitingForEngineSchema(Schema):
    """A run whose step waits for its engine site to answer again; it resumes by itself."""

    step = fields.String(required=True)
    since = fields.DateTime(required=True)
    next_probe_at = fields.DateTime(allow_none=True)
    reason = fields.String(allow_none=True)


class RunStatusSchema(RunSummarySchema):
    steps_completed = fields.Method("_completed")
    total_steps = fields.Method("_total")
    steps = fields.List(fields.Nested(StepSchema))
    errors = fields.Method("_errors")
    waiting_for_engine = fields.Method("_waiting", allow_none=True)

    def _waiting(self, run: Run) -> Any:
        step = next((s for s in run.steps if s.status == StepStatus.WAITING), None)
        if step is None:
            return None
        return _WAITING.dump(
            {
                "step": step.name,
                "since": step.waiting_since or step.next_attempt_at,
                "next_probe_at": step.next_attempt_at,
                "reason": (step.error or {}).get("message"),
            }
        )

    def _completed(self, run: Run) -> int:
        return sum(1 for s in run.steps if s.status == "completed")

    def _total(self, run: Run) -> int:
        return len(run.steps)

    def _errors(self, run: Run) -> Any:
        return RunErrorSchema(many=True).dump(
            {
                "step": s.name,
                "status": s.status,
                "message": s.error.get("message", ""),
                "engine": s.error.get("engine"),
            }
            for s in run.steps
            if s.error is not None and s.status in ERRORED_STEP_STATUSES
        )


def status_document(run: Run) -> dict[str, Any]:
    """The run's status document (`GET …/status`), built from its rows: run and steps."""
    built: dict[str, Any] = _STATUS.dump(run)
    return built


_STATUS = RunStatusSchema()
_WAITING = WaitingForEngineSchema()


class RunEventSchema(Schema):
    id = fields.Integer(required=True)
    step = fields.String(allow_none=True)
    kind = fields.String(required=True)
    status = fields.String(allow_none=True)
    attempt = fields.Integer(allow_none=True)
    message = fields.String(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    data = fields.Dict(allow_none=True)
    created_at = fields.DateTime(required=True)


class LogQuerySchema(StrictSchema):
    run_id = fields.UUID(load_default=None)
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_ID))
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class RunLogSchema(Schema):
    run_id = fields.UUID(required=True)
    events = fields.List(fields.Nested(RunEventSchema))
