"""Flower against a real worker: a run's step tasks, readable, through its HTTP API."""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from provisioner.models import RunStatus
from tests.conftest import SIM_SECRET
from tests.helpers import new_tenant, start, wait_run
from tests.workers import ROOT

pytestmark = pytest.mark.integration
AUTH = ("operator", "flower-test-password")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def flower(worker, tmp_path) -> Iterator[str]:
    """`celery -A provisioner flower` with basic auth, once it hears the worker's events."""
    port = free_port()
    log = tmp_path / "flower.log"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "provisioner", "flower",
         f"--port={port}", "--address=127.0.0.1", f"--basic-auth={AUTH[0]}:{AUTH[1]}"],
        cwd=ROOT, env=dict(os.environ), stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    worker_prefix = worker.name.split("@")[0] + "@"
    deadline = time.monotonic() + 60
    try:
        while not _hears(url, worker_prefix):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"Flower never heard the worker:\n{log.read_text()}"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def _hears(url: str, prefix: str) -> bool:
    try:
        alive = requests.get(f"{url}/api/workers", params={"status": "true"}, auth=AUTH, timeout=2)
    except requests.ConnectionError:
        return False
    return alive.ok and any(up for name, up in alive.json().items() if name.startswith(prefix))


def flower_tasks(url: str, **params: str) -> dict[str, dict]:
    return requests.get(f"{url}/api/tasks", params=params, auth=AUTH, timeout=5).json()


def test_flower_shows_a_runs_step_tasks(app_ctx, flower, sim):
    assert requests.get(f"{flower}/api/tasks", timeout=5).status_code == 401
    sim.add_fault(kind="error", status=503, exc_type="SessionStopped", method="POST",
                  path="^/api/resource/Warehouse$", count=1)  # fmt: skip
    tenant = new_tenant()
    run = wait_run(start(tenant))
    assert run.status == RunStatus.COMPLETED
    names = {f"provisioner.steps.{s.name}" for s in run.steps if s.planned}

    deadline = time.monotonic() + 30
    while True:
        tasks = flower_tasks(flower, search=str(run.id))  # as typed in Flower's search box
        ours = {t["name"]: t for t in tasks.values()}
        if ours.keys() == names and all(t["state"] == "SUCCESS" for t in ours.values()):
            break
        assert time.monotonic() < deadline, {n: t["state"] for n, t in ours.items()}
        time.sleep(0.3)

    for name, task in ours.items():
        step = run.step(name.removeprefix("provisioner.steps."))
        assert list(ast.literal_eval(task["args"])) == [str(run.id)]
        assert ast.literal_eval(task["kwargs"]) == {
            "origin": "chain",
            "tenant": tenant.slug,
            "position": f"{step.position}/{len(run.steps)}",
        }
        assert task["runtime"] > 0
        assert task["result"] == "'completed'"
        assert task["uuid"] == step.task_id
    assert flower_tasks(flower, search=f"kwargs:tenant={tenant.slug}").keys() == tasks.keys()
    retried = ours["provisioner.steps.create_warehouses"]
    assert retried["retries"] == 1
    assert "EngineBusy" in retried["exception"]  # the retry's reason
    assert SIM_SECRET not in json.dumps(tasks)
