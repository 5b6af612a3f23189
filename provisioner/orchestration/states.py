"""The state machine of runs and steps: which transitions are allowed, in one place."""

from __future__ import annotations

from provisioner.models.status import RunStatus, StepStatus

R, S = RunStatus, StepStatus

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
    S.RUNNING: frozenset({S.RUNNING, S.COMPLETED, S.FAILED, S.RETRYING, S.CANCELLED}),
    S.RETRYING: frozenset({S.RUNNING, S.FAILED, S.CANCELLED}),
    # completed -> running: a manual rerun (`celery call`); steps are idempotent
    S.COMPLETED: frozenset({S.RUNNING}),
    S.FAILED: frozenset({S.PENDING, S.RUNNING, S.SKIPPED}),
    S.NOT_REACHED: frozenset({S.PENDING, S.RUNNING, S.SKIPPED}),
    # cancelled -> completed: the step finished before the cancel could stop it
    S.CANCELLED: frozenset({S.PENDING, S.RUNNING, S.SKIPPED, S.COMPLETED, S.FAILED}),
    S.SKIPPED: frozenset({S.PENDING, S.RUNNING}),
}


class InvalidTransition(Exception):
    """A change of state that the current state does not allow."""

    def __init__(self, what: str, current: str, target: str, reason: str | None = None) -> None:
        self.what, self.current, self.target = what, current, target
        super().__init__(reason or f"{what} is {current}; it cannot become {target}")


def check_run(current: RunStatus, target: RunStatus, reason: str | None = None) -> None:
    if target not in RUN_TRANSITIONS[RunStatus(current)]:
        raise InvalidTransition("run", current, target, reason)


def check_step(current: StepStatus, target: StepStatus, reason: str | None = None) -> None:
    if target not in STEP_TRANSITIONS[StepStatus(current)]:
        raise InvalidTransition("step", current, target, reason)
