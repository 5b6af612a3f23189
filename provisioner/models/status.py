"""The status values stored in the database; the allowed transitions live in orchestration."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    PENDING = "PENDING"  # written, queued, no step has started yet
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    PARTIAL = "PARTIAL"  # every critical step completed; some non-critical failed or skipped
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ACTIVE_RUN_STATUSES = (RunStatus.PENDING, RunStatus.IN_PROGRESS)
FINAL_RUN_STATUSES = (RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED, RunStatus.CANCELLED)


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"  # waiting out a backoff before the next attempt
    # Parked while its engine site is unavailable (or kept from it by transient causes);
    # resumed by the engine probe, failed only after RUN_TRANSIENT_DEADLINE.
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # on purpose: by option or by a person; never runs in this run
    NOT_REACHED = "not_reached"  # an earlier critical step failed; `continue` runs it
    CANCELLED = "cancelled"  # the run was cancelled while this step was running or waiting


# Begun and not finished: an attempt is under way, or the next one is on its way.
UNDER_WAY_STEP_STATUSES = (StepStatus.RUNNING, StepStatus.RETRYING, StepStatus.WAITING)
# The step's error is its current state (shown), not a past attempt's.
ERRORED_STEP_STATUSES = (StepStatus.FAILED, StepStatus.RETRYING, StepStatus.WAITING)
# Not finished at all: the run has these still to do.
UNFINISHED_STEP_STATUSES = (StepStatus.PENDING, *UNDER_WAY_STEP_STATUSES)
# A step in one of these states is done for the purpose of going on with the plan.
SETTLED_STEP_STATUSES = (StepStatus.COMPLETED, StepStatus.SKIPPED)


class ProvisioningStatus(StrEnum):
    """The tenant's summary of its latest run."""

    NOT_PROVISIONED = "NOT_PROVISIONED"
    PROVISIONING = "PROVISIONING"
    PROVISIONED = "PROVISIONED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"


class TenantStatus(StrEnum):
    """The workspace's own lifecycle (its site), apart from provisioning."""

    PENDING = "pending"
    ACTIVE = "active"
    ARCHIVED = "archived"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
