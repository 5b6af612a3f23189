"""The state machines of runs, steps and site jobs: which transitions are allowed, in one place."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from provisioner.errors import InvalidTransition
from provisioner.models.job import JobStatus
from provisioner.models.status import RunStatus, StepStatus

R, S, J = RunStatus, StepStatus, JobStatus
State = TypeVar("State", bound=StrEnum)

RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    R.PENDING: frozenset({R.IN_PROGRESS, R.CANCELLED, R.FAILED}),
    R.IN_PROGRESS: frozenset({R.COMPLETED, R.PARTIAL, R.FAILED, R.CANCELLED}),
    # retry / continue put a finished run back in the queue (a new chain, same run)
    R.FAILED: frozenset({R.PENDING}),
    R.PARTIAL: frozenset({R.PENDING}),
    R.CANCELLED: frozenset({R.PENDING}),
    R.COMPLETED: frozenset(),
}

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    S.PENDING: frozenset({S.RUNNING, S.SKIPPED, S.NOT_REACHED, S.CANCELLED}),
    # running -> running: another delivery takes over a step whose worker vanished
    S.RUNNING: frozenset({S.RUNNING, S.COMPLETED, S.FAILED, S.RETRYING, S.WAITING, S.CANCELLED}),
    S.RETRYING: frozenset({S.RUNNING, S.FAILED, S.CANCELLED}),
    # waiting -> pending: its engine answers again, a new chain resumes it
    S.WAITING: frozenset({S.PENDING, S.RUNNING, S.FAILED, S.CANCELLED}),
    # completed -> running: a manual rerun (`celery call`); steps are idempotent
    S.COMPLETED: frozenset({S.RUNNING}),
    S.FAILED: frozenset({S.PENDING, S.RUNNING, S.SKIPPED}),
    S.NOT_REACHED: frozenset({S.PENDING, S.RUNNING, S.SKIPPED}),
    # cancelled -> completed: the step finished before the cancel could stop it
    S.CANCELLED: frozenset({S.PENDING, S.RUNNING, S.SKIPPED, S.COMPLETED, S.FAILED}),
    S.SKIPPED: frozenset({S.PENDING, S.RUNNING}),
}

JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    J.PENDING: frozenset({J.RUNNING, J.FAILED, J.CANCELLED}),
    # running -> running: the next attempt after a retry or a redelivery
    J.RUNNING: frozenset({J.RUNNING, J.COMPLETED, J.FAILED, J.CANCELLED}),
    J.COMPLETED: frozenset({J.PENDING}),  # retry
    J.FAILED: frozenset({J.PENDING}),  # retry
    J.CANCELLED: frozenset(),
}


def check(
    machine: dict[State, frozenset[State]],
    what: str,
    current: str,
    target: State,
    reason: str | None = None,
) -> None:
    """Raise InvalidTransition unless `machine` lets `what` go from `current` to `target`."""
    if target not in machine[type(target)(current)]:
        raise InvalidTransition(what, current, target, reason)
