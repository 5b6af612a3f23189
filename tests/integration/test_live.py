"""Live updates: Redis pub/sub after commit, and the Server-Sent Events route (real services)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from provisioner.extensions import db
from provisioner.models import Run, RunStatus, Tenant
from provisioner.models.types import utcnow
from provisioner.observability import live
from provisioner.orchestration import changes, runs, transitions
from tests.helpers import new_tenant, start
from tests.integration.conftest import Api, make_user

pytestmark = pytest.mark.integration
V1 = "/api/v1/provisioning/tenants"
ALIAS = "/api/provisioning/tenants"


class EventStream:
    """Reads a streamed text/event-stream response one event at a time (comments skipped)."""

    def __init__(self, response) -> None:
        self.response = response
        self._chunks: Iterator[bytes] = iter(response.response)
        self._buffer = ""

    def next(self) -> tuple[str, dict]:
        while True:
            block, sep, rest = self._buffer.partition("\n\n")
            if sep:
                self._buffer = rest
                fields = dict(
                    line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
                )
                if fields:
                    return fields["event"], json.loads(fields["data"])
                continue
            self._buffer += next(self._chunks).decode()

    def until(self, done, timeout: float = 60) -> list[tuple[str, dict]]:
        """Events until `done(kind, data)` holds; fails after `timeout` seconds."""
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            seen.append(self.next())
            if done(*seen[-1]):
                return seen
        raise AssertionError(f"no such event within {timeout} s: {seen[-3:]}")

    def close(self) -> None:
        self.response.close()


def open_stream(api: Api, prefix: str, tenant_id) -> EventStream:
    issued = api.post(f"{prefix}/{tenant_id}/events/ticket")
    assert issued.status_code == 200, issued.json
    response = api.client.get(
        f"{prefix}/{tenant_id}/events?ticket={issued.json['ticket']}", buffered=False
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    return EventStream(response)


def finished_run(tenant, **fields) -> Run:
    """A run row of its own (no chain published), for transitions made by the test."""
    run = Run(tenant=tenant, plan="BASIC", status=RunStatus.COMPLETED, created_at=utcnow())
    db.session.add(run)
    transitions.event(run, "test_change", **fields)
    return run


def test_the_stream_needs_a_bearer_token_or_a_ticket_for_that_workspace(app_ctx, client):
    tenant, other = new_tenant(), new_tenant()
    admin = Api(client, make_user(admin=True))
    stranger = Api(client, make_user())

    assert client.get(f"{V1}/{tenant.id}/events").status_code == 401
    assert client.get(f"{V1}/{tenant.id}/events?ticket=forged").status_code == 401
    bearer = client.get(f"{V1}/{tenant.id}/events?ticket={admin.token}")
    assert bearer.status_code == 401  # an access token is not a stream ticket
    elsewhere = admin.post(f"{V1}/{other.id}/events/ticket").json["ticket"]
    assert client.get(f"{V1}/{tenant.id}/events?ticket={elsewhere}").status_code == 401
    assert client.post(f"{V1}/{tenant.id}/events/ticket").status_code == 401
    assert stranger.post(f"{V1}/{tenant.id}/events/ticket").status_code == 404
    assert stranger.get(f"{V1}/{tenant.id}/events").status_code == 404
    unknown = client.get(f"{V1}/{tenant.id}/events?ticket=x&token=y")
    assert unknown.status_code == 422


def test_a_ticket_is_short_lived_and_reads_one_workspace(app_ctx, client):
    tenant = new_tenant()
    issued = Api(client, make_user(admin=True)).post(f"{ALIAS}/{tenant.id}/events/ticket")

    assert issued.status_code == 200
    assert issued.json["expires_in"] == 60
    as_bearer = client.get(
        "/api/v1/tenants", headers={"Authorization": f"Bearer {issued.json['ticket']}"}
    )
    assert as_bearer.status_code == 401


@pytest.mark.parametrize("prefix", [V1, ALIAS])
def test_the_stream_sends_the_state_then_each_committed_change(app_ctx, client, sim, prefix):
    # Should a worker run this session, the run stays active until the test cancels it.
    sim.add_fault(kind="latency", seconds=5, method="POST", path="^/api/resource/Company$")
    tenant = new_tenant()
    tenant_id = tenant.id
    api = Api(client, make_user(admin=True))
    stream = open_stream(api, prefix, tenant_id)
    try:
        assert stream.next() == (
            "idle",
            {"tenant_id": str(tenant_id), "message": "not provisioned yet"},
        )

        run_id = start(db.session.get(Tenant, tenant_id))
        kind, status = stream.next()
        assert kind == "status"
        assert status["run_id"] == str(run_id)
        assert len(status["steps"]) == 9

        runs.cancel(run_id, "tests")
        _, cancelled = stream.until(lambda _, data: data["status"] == "CANCELLED")[-1]
        assert cancelled["run_id"] == str(run_id)
        assert all(s["status"] != "running" for s in cancelled["steps"])
    finally:
        stream.close()


def test_the_stream_follows_a_run_that_workers_execute(app_ctx, client, worker, sim):
    tenant = new_tenant()
    api = Api(client, make_user(admin=True))
    stream = open_stream(api, V1, tenant.id)
    try:
        assert stream.next()[0] == "idle"
        started = api.post(f"{V1}/{tenant.id}/start", json={})
        assert started.status_code == 202

        seen = stream.until(lambda _, data: data["status"] == "COMPLETED")
    finally:
        stream.close()
    progress = [data["progress"] for _, data in seen]
    assert progress == sorted(progress)  # one ordered source: the state never goes back
    assert seen[0][1]["status"] in ("PENDING", "IN_PROGRESS")  # the start, as it happened
    assert {s["status"] for s in seen[-1][1]["steps"]} <= {"completed", "skipped"}


def test_changes_are_published_after_commit_and_never_after_rollback(app_ctx, redis_url):
    tenant = new_tenant()
    pubsub = redis.Redis.from_url(app_ctx.config["REDIS_URL"]).pubsub(
        ignore_subscribe_messages=True
    )
    pubsub.subscribe(live.channel(tenant.id))
    try:
        rolled_back = finished_run(tenant)
        rolled_back_id = rolled_back.id
        changes.rollback()
        committed = finished_run(tenant)
        changes.commit()

        message = None
        deadline = time.monotonic() + 10
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1)
    finally:
        pubsub.close()
    assert message is not None
    assert json.loads(message["data"]) == {"tenant_id": str(tenant.id), "run_id": str(committed.id)}
    assert rolled_back_id != committed.id


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:5672//", "redis://127.0.0.1:1/0"])
def test_without_redis_the_stream_is_503_and_transitions_still_commit(
    app_ctx, client, monkeypatch, url
):
    monkeypatch.setitem(app_ctx.config, "REDIS_URL", url)
    tenant = new_tenant()
    api = Api(client, make_user(admin=True))

    assert api.post(f"{V1}/{tenant.id}/events/ticket").status_code == 200
    answer = api.get(f"{V1}/{tenant.id}/events")
    assert answer.status_code == 503
    assert answer.json["error"]["code"] == "live_unavailable"

    run_id = finished_run(tenant).id
    changes.commit()  # publishing fails quietly; the change is kept
    db.session.expire_all()
    assert db.session.get(Run, run_id) is not None
