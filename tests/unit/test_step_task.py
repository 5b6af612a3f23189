"""The step task wrapper in-process: the claim's wait loop, the retry countdown, the chain's
next link, and the app-context guard of every task. No broker, no worker, no database."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from celery import Task, _state
from flask import g

from provisioner import create_app
from provisioner.engine.errors import EngineBusy, RateLimited
from provisioner.orchestration.execution import Action, Claim
from provisioner.tasks import step_task
from provisioner.tasks.base import AppContextTask


@pytest.fixture(scope="module")
def app():
    before = _state.default_app  # create_app makes its Celery app the default; put it back
    yield create_app({"STALE_AFTER": 0.05, "CELERY": {"broker_url": "memory://"}})
    _state.set_default_app(before)


@pytest.fixture
def task(app):
    with app.app_context():
        yield app.extensions["celery"].tasks["provisioner.steps.create_company"]


def test_the_claim_asks_again_while_another_delivery_may_run_the_step(task, monkeypatch):
    answers = iter([Action.WAIT, Action.WAIT, Action.RUN])
    asked: list[dict[str, Any]] = []

    def claim(run_id: str, step: str, **kw: Any) -> Claim:
        asked.append(kw)
        return Claim(next(answers))

    monkeypatch.setattr(step_task.execution, "claim", claim)
    monkeypatch.setattr(step_task, "CLAIM_POLL_SECONDS", 0.001)
    task.push_request(id="t-1", chain=None)
    try:
        assert step_task._claim(task, "run-1", manual=False).action == Action.RUN
    finally:
        task.pop_request()
    assert len(asked) == 3
    assert asked[0] == {"task_id": "t-1", "manual": False, "next_task_id": None}


def test_the_claim_gives_up_waiting_after_the_heartbeat_limit(task, monkeypatch):
    monkeypatch.setattr(step_task.execution, "claim", lambda *_, **__: Claim(Action.WAIT))
    monkeypatch.setattr(step_task, "CLAIM_POLL_SECONDS", 0.001)
    monkeypatch.setattr(step_task, "CLAIM_GRACE_SECONDS", 0.01)
    task.push_request(id="t-2", chain=None)
    try:
        assert step_task._claim(task, "run-1", manual=False).action == Action.WAIT
    finally:
        task.pop_request()


def test_the_next_link_is_the_last_of_the_reversed_chain():
    chain = [{"options": {"task_id": "third"}}, {"options": {"task_id": "second"}}]
    assert step_task._next_link_id(SimpleNamespace(chain=chain)) == "second"
    assert step_task._next_link_id(SimpleNamespace(chain=None)) is None
    assert step_task._next_link_id(SimpleNamespace(chain=[{}])) is None


@pytest.mark.parametrize(
    ("error", "countdown", "waited"),
    [
        (RateLimited("slow down", status=429, retry_after=7.0), 1.0, 7.0),  # never sooner
        (RateLimited("slow down", status=429, retry_after=0.5), 3.0, 3.0),  # never later
        (EngineBusy("busy", status=503), 2.0, 2.0),
    ],
)
def test_a_retry_waits_for_retry_after_and_is_recorded_first(
    task, monkeypatch, error, countdown, waited
):
    recorded: list[tuple[str, ...]] = []
    scheduled: list[float] = []
    monkeypatch.setattr(
        step_task.execution,
        "record_retry",
        lambda run_id, step, task_id, exc, delay: recorded.append((run_id, step, task_id, delay)),
    )
    monkeypatch.setattr(
        Task, "retry", lambda self, *a, countdown=None, **kw: scheduled.append(countdown)
    )
    task.push_request(id="t-3", args=["run-9"], retries=0)
    try:
        task.retry(exc=error, countdown=countdown)
    finally:
        task.pop_request()
    assert scheduled == [waited]
    assert recorded == [("run-9", "create_company", "t-3", waited)]


def test_the_last_retry_is_not_recorded_as_one(task, monkeypatch):
    recorded: list[object] = []
    monkeypatch.setattr(step_task.execution, "record_retry", lambda *a: recorded.append(a))
    monkeypatch.setattr(Task, "retry", lambda self, *a, **kw: None)
    task.push_request(id="t-4", args=["run-9"], retries=task.max_retries)
    try:
        task.retry(exc=EngineBusy("busy", status=503), countdown=1.0)
    finally:
        task.pop_request()
    assert recorded == []


def test_the_retry_backoff_cap_comes_from_the_config(app):
    capped = create_app({"STEP_RETRY_BACKOFF_MAX": 7})
    assert (
        capped.extensions["celery"].tasks["provisioner.steps.check_engine"].retry_backoff_max == 7
    )
    default = app.extensions["celery"].tasks["provisioner.steps.check_engine"]
    assert default.retry_backoff_max == app.config["STEP_RETRY_BACKOFF_MAX"]


def test_a_task_called_inside_an_app_context_keeps_it(app):
    celery = app.extensions["celery"]

    @celery.task(base=AppContextTask, name="tests.reads_g")
    def reads_g() -> str | None:
        return g.get("marker")

    with app.app_context():
        g.marker = "the caller's context"
        assert reads_g() == "the caller's context"
    assert reads_g() is None  # outside one, the task gets a fresh app context of its own
