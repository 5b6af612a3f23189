"""Live updates end to end: transitions committed by the API and the workers, published once,
read by the live process's streams (real live process, real Redis, real PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from bench.common import free_port
from provisioner.extensions import db
from provisioner.live import protocol
from provisioner.models import Run, RunStatus, Tenant
from provisioner.models.types import utcnow
from provisioner.orchestration import changes, runs, transitions
from provisioner.schemas.dialects import PAGE_STEP_IDS
from provisioner.steps import STEP_NAMES
from tests.helpers import new_tenant, start
from tests.integration.conftest import Api, make_user
from tests.live import LiveProcess, Stream

pytestmark = pytest.mark.integration
V1 = "/api/v1/provisioning/tenants"
ALIAS = "/api/provisioning/tenants"
ROOT = Path(__file__).resolve().parents[2]


def open_stream(api: Api, live: LiveProcess, prefix: str, tenant_id) -> Stream:
    issued = api.post(f"{prefix}/{tenant_id}/events/ticket")
    assert issued.status_code == 200, issued.json
    stream = Stream(live, f"{prefix}/{tenant_id}/events?ticket={issued.json['ticket']}")
    assert stream.status == 200
    assert stream.response.getheader("Content-Type") == "text/event-stream"
    return stream


def finished_run(tenant, **fields) -> Run:
    """A run row of its own (no chain published), for transitions made by the test."""
    run = Run(tenant=tenant, plan="BASIC", status=RunStatus.COMPLETED, created_at=utcnow())
    db.session.add(run)
    transitions.event(run, "test_change", **fields)
    return run


def test_the_stream_needs_a_ticket_for_that_workspace(app_ctx, client, live_process):
    tenant, other = new_tenant(), new_tenant()
    admin, stranger = Api(client, make_user(admin=True)), Api(client, make_user())

    assert client.post(f"{V1}/{tenant.id}/events/ticket").status_code == 401
    assert stranger.post(f"{V1}/{tenant.id}/events/ticket").status_code == 404
    elsewhere = admin.post(f"{V1}/{other.id}/events/ticket").json["ticket"]
    refusals = {
        "": "unauthorized",
        "?ticket=forged": "unauthorized",
        f"?ticket={elsewhere}": "unauthorized",
        f"?ticket={admin.token}": "unauthorized",  # an access token is not a stream ticket
    }
    for query, code in refusals.items():
        stream = Stream(live_process, f"{V1}/{tenant.id}/events{query}")
        assert (stream.status, stream.error()["error"]["code"]) == (401, code), query
    bearer = Stream(
        live_process,
        f"{V1}/{tenant.id}/events",
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert (bearer.status, bearer.error()["error"]["code"]) == (401, "ticket_required")


def test_a_ticket_is_short_lived_and_is_no_access_token(app_ctx, client):
    tenant = new_tenant()
    issued = Api(client, make_user(admin=True)).post(f"{ALIAS}/{tenant.id}/events/ticket")

    assert issued.status_code == 200
    assert issued.json["expires_in"] == 60
    as_bearer = client.get(
        "/api/v1/tenants", headers={"Authorization": f"Bearer {issued.json['ticket']}"}
    )
    assert as_bearer.status_code == 401


@pytest.mark.parametrize("prefix", [V1, ALIAS])
def test_the_stream_sends_the_state_then_each_committed_change(
    app_ctx, client, sim, live_process, prefix
):
    # Should a worker run this session, the run stays active until the test cancels it.
    sim.add_fault(kind="latency", seconds=5, method="POST", path="^/api/resource/Company$")
    tenant = new_tenant()
    tenant_id = tenant.id
    stream = open_stream(Api(client, make_user(admin=True)), live_process, prefix, tenant_id)
    try:
        assert stream.next() == (
            "idle",
            {"tenant_id": str(tenant_id), "message": "not provisioned yet"},
        )
        run_id = start(db.session.get(Tenant, tenant_id))
        kind, status = stream.next()
        assert kind == "status"
        assert status["run_id"] == str(run_id)
        names = {step["name"] for step in status["steps"]}
        # The unversioned stream speaks the page's step vocabulary, as its …/status does.
        assert names == (set(STEP_NAMES) if prefix == V1 else set(PAGE_STEP_IDS.values()))

        runs.cancel(run_id, "tests")
        _, cancelled = stream.until(lambda _, data: data["status"] == "CANCELLED")[-1]
        assert cancelled["run_id"] == str(run_id)
        assert all(s["status"] != "running" for s in cancelled["steps"])
        assert int(stream.last_id) == db.session.get(Run, run_id).version
    finally:
        stream.close()


def test_the_stream_follows_a_run_that_workers_execute(app_ctx, client, worker, sim, live_process):
    tenant = new_tenant()
    api = Api(client, make_user(admin=True))
    stream = open_stream(api, live_process, V1, tenant.id)
    try:
        assert stream.next()[0] == "idle"
        assert api.post(f"{V1}/{tenant.id}/start", json={}).status_code == 202
        seen = stream.until(lambda _, data: data["status"] == "COMPLETED")
    finally:
        stream.close()
    progress = [data["progress"] for _, data in seen]
    assert progress == sorted(progress)  # one ordered source: the state never goes back
    assert seen[0][1]["status"] in ("PENDING", "IN_PROGRESS")  # the start, as it happened
    assert {s["status"] for s in seen[-1][1]["steps"]} <= {"completed", "skipped"}


def test_a_change_is_published_once_after_commit_and_never_after_rollback(app_ctx):
    tenant = new_tenant()
    client = redis.Redis.from_url(app_ctx.config["REDIS_URL"])
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(protocol.channel(tenant.id))
    try:
        finished_run(tenant)
        changes.rollback()
        committed = finished_run(tenant)
        changes.commit()
        messages = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not messages:
            message = pubsub.get_message(timeout=1)
            if message:
                messages.append(protocol.State.from_message(message["data"]))
    finally:
        pubsub.close()
    db.session.expire_all()
    stored = db.session.get(Run, committed.id)
    assert [(m.version, m.event) for m in messages] == [(stored.version, "status")]
    assert json.loads(messages[0].data) == stored.status_doc  # the snapshot, as committed
    held = client.hgetall(protocol.state_key(tenant.id))
    assert int(held[b"version"]) == stored.version


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:5672//", "redis://127.0.0.1:1/0"])
def test_without_redis_transitions_still_commit(app_ctx, monkeypatch, url):
    monkeypatch.setitem(app_ctx.config, "REDIS_URL", url)
    tenant = new_tenant()
    run_id = finished_run(tenant).id
    changes.commit()  # publishing fails quietly; the change is kept
    db.session.expire_all()
    assert db.session.get(Run, run_id).status_doc is not None


@pytest.fixture
def web(app, tmp_path):
    """The API as the demo runs it: gunicorn, 1 worker x 8 threads."""
    port = free_port()
    log = tmp_path / "web.log"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "8", "wsgi:app"],
        cwd=ROOT, env=dict(os.environ), stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/healthz", timeout=5)
            break
        except requests.RequestException:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_fifty_open_streams_hold_no_api_thread(app_ctx, client, live_process, web):
    """Before the live process, 10 streams on this web process made a status call time out."""
    tenant, api = new_tenant(), Api(client, make_user(admin=True))
    start(tenant)
    viewers = [Api(client, make_user(admin=True)) for _ in range(5)]  # 10 pages each
    streams = [open_stream(viewers[i % 5], live_process, V1, tenant.id) for i in range(50)]
    try:
        assert all(s.next()[0] == "status" for s in streams)
        headers = {"Authorization": f"Bearer {api.token}"}

        def status_call(_: int) -> int:
            return requests.get(
                f"{web}{V1}/{tenant.id}/status", headers=headers, timeout=20
            ).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            assert list(pool.map(status_call, range(40))) == [200] * 40
    finally:
        for stream in streams:
            stream.close()
