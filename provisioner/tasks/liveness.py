"""A worker tells Redis it is alive and what it holds (`orchestration.liveness`).

Connected to Celery's worker signals: the main process names itself at `worker_init`
(before the pool forks, so its processes know the name), beats from a thread between
`worker_ready` and `worker_shutdown`, and records each message it receives
(`task_received`); a message leaves the set when its task has run (`task_postrun`, in the
pool process: success, failure or retry, whose new message is a new delivery) or was
revoked. Redis trouble is logged and never stops a worker: after a failure the worker
leaves Redis alone for MUTE_SECONDS, so an outage costs a message one timeout at most.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import current_app as current_celery
from celery.signals import (
    task_postrun,
    task_received,
    task_revoked,
    worker_init,
    worker_ready,
    worker_shutdown,
)

from provisioner.orchestration import liveness

log = logging.getLogger(__name__)

MUTE_SECONDS = 5.0


@dataclass
class _State:
    worker: str | None = None  # this worker's liveness name, set in its main process
    muted_until: float = 0.0  # monotonic time until which Redis is left alone
    stop: threading.Event = field(default_factory=threading.Event)


_state = _State()


@worker_init.connect
def _named(sender: Any, **_: Any) -> None:
    _state.worker = f"{sender.hostname}:{os.getpid()}"
    _state.stop.clear()


@worker_ready.connect
def _start_beating(**_: Any) -> None:
    if _state.worker is not None:
        args = (_state.worker,)
        threading.Thread(target=_beat, args=args, name="liveness", daemon=True).start()


@worker_shutdown.connect
def _stop_beating(**_: Any) -> None:
    if _state.worker is not None:
        _state.stop.set()
        _quietly(liveness.left, _state.worker)


@task_received.connect
def _received(request: Any, **_: Any) -> None:
    if _state.worker is not None:
        delivery = liveness.member(request.id, request.request_dict.get("retries"))
        _quietly(liveness.received, _state.worker, delivery)


@task_postrun.connect
def _ran(task: Any, **_: Any) -> None:
    _release(task.request)


@task_revoked.connect
def _revoked(request: Any, **_: Any) -> None:
    _release(request)


def _release(request: Any) -> None:
    if _state.worker is not None and not getattr(request, "is_eager", False):
        _quietly(liveness.released, _state.worker, liveness.member(request.id, request.retries))


def _beat(worker: str) -> None:
    with current_celery.flask_app.app_context():
        every = current_celery.flask_app.config["WORKER_LIVENESS_TTL"] / 3
        while True:
            _quietly(liveness.beat, worker)
            if _state.stop.wait(every):
                return


def _quietly(action: Callable[..., None], *args: str) -> None:
    if time.monotonic() < _state.muted_until and action is not liveness.beat:
        return
    try:
        with current_celery.flask_app.app_context():
            action(*args)
    except redis.RedisError as exc:
        _state.muted_until = time.monotonic() + MUTE_SECONDS
        log.warning("worker liveness: %s failed (%s)", action.__name__, exc)
