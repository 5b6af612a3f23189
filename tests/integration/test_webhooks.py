"""Webhooks: registered through the API, signed POSTs to real local receivers, retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise

import pytest

from provisioner.extensions import db
from provisioner.models import Role, RunStatus, WebhookDelivery
from provisioner.orchestration.transitions import lock_run, set_run_status
from tests.helpers import new_tenant, start, wait_run
from tests.integration.conftest import Api, join, make_user

pytestmark = pytest.mark.integration


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/operations.md shows it."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(fields["t"])
    if abs(time.time() - timestamp) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


class Receiver:
    """A threaded local HTTP server that answers with the given statuses (then the last)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.secret = ""
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signature = self.headers["X-Provisioner-Signature"]
                receiver.received.append(
                    {
                        "headers": dict(self.headers),
                        "payload": json.loads(body),
                        "valid": verify(receiver.secret, body, signature),
                        "tampered_valid": verify(receiver.secret, body + b" ", signature),
                    }
                )
                statuses = receiver.statuses
                self.send_response(statuses.pop(0) if len(statuses) > 1 else statuses[0])
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/provisioner"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(*statuses: int) -> Receiver:
        made.append(Receiver(*statuses))
        return made[-1]

    yield make
    for receiver in made:
        receiver.server.shutdown()
        receiver.server.server_close()


def register(api: Api, tenant, receiver: Receiver) -> dict:
    response = api.post(f"/api/v1/tenants/{tenant.id}/webhooks", json={"url": receiver.url})
    assert response.status_code == 201, response.json
    receiver.secret = response.json["secret"]
    return response.json


def wait_deliveries(run_id, until: Callable[[list[WebhookDelivery]], bool], timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        rows = list(
            db.session.execute(
                db.select(WebhookDelivery)
                .where(WebhookDelivery.run_id == run_id)
                .order_by(WebhookDelivery.created_at)
            ).scalars()
        )
        if until(rows):
            return rows
        assert time.monotonic() < deadline, [(d.status, d.attempts) for d in rows]
        time.sleep(0.1)


def settled(count: int) -> Callable[[list[WebhookDelivery]], bool]:
    return lambda rows: len(rows) == count and all(d.status != "pending" for d in rows)


def test_a_completed_run_is_posted_once_signed(admin_api, client, worker, sim, receivers):
    receiver = receivers(200)
    tenant = new_tenant()
    created = register(admin_api, tenant, receiver)
    assert created["secret"].startswith("whsec_")
    listed = admin_api.get(f"/api/v1/tenants/{tenant.id}/webhooks").json["items"]
    assert [hook["url"] for hook in listed] == [receiver.url]
    assert "secret" not in json.dumps(listed)
    member = make_user()
    join(member, tenant, Role.MEMBER)
    assert Api(client, member).get(f"/api/v1/tenants/{tenant.id}/webhooks").status_code == 403

    run = wait_run(start(tenant))
    assert run.status == RunStatus.COMPLETED
    [delivery] = wait_deliveries(run.id, settled(1))

    [post] = receiver.received
    assert post["valid"]
    assert not post["tampered_valid"]
    payload = post["payload"]
    assert (payload["type"], payload["id"]) == ("run.completed", str(delivery.id))
    assert post["headers"]["X-Provisioner-Delivery"] == str(delivery.id)
    assert post["headers"]["X-Provisioner-Event"] == "run.completed"
    assert payload["run"]["id"] == str(run.id)
    assert payload["run"]["status"] == "COMPLETED"
    assert payload["run"]["progress"] == 100
    assert payload["tenant"] == {"id": str(tenant.id), "slug": tenant.slug}
    page = admin_api.get(f"/api/v1/tenants/{tenant.id}/webhooks/deliveries").json
    assert page["total"] == 1
    [listed_delivery] = page["items"]
    assert (listed_delivery["status"], listed_delivery["attempts"]) == ("delivered", 1)
    assert listed_delivery["attempt_log"][0]["status_code"] == 200

    gone = admin_api.request("DELETE", f"/api/v1/tenants/{tenant.id}/webhooks/{created['id']}")
    assert gone.status_code == 204
    assert admin_api.get(f"/api/v1/tenants/{tenant.id}/webhooks").json["items"] == []


def test_failing_receivers_are_retried_with_backoff_until_they_give_up(
    app_ctx, admin_api, worker, sim, receivers
):
    recovering, broken = receivers(500, 500, 200), receivers(503)
    tenant = new_tenant()
    register(admin_api, tenant, recovering)
    register(admin_api, tenant, broken)
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="GET",
                  path="frappe.auth.get_logged_user$", message="no such user")  # fmt: skip

    run = wait_run(start(tenant))
    assert run.status == RunStatus.FAILED
    deliveries = wait_deliveries(run.id, settled(2))

    delivered = next(d for d in deliveries if d.status == "delivered")
    failed = next(d for d in deliveries if d.status == "failed")
    assert [a["error"] for a in delivered.attempt_log] == ["HTTP 500", "HTTP 500", None]
    assert (failed.attempts, failed.last_status_code, failed.last_error) == (4, 503, "HTTP 503")
    # Each retry waited at least its backoff: base, 2 x base, 4 x base (less 20 % jitter).
    times = [datetime.fromisoformat(a["at"]) for a in failed.attempt_log]
    waits = [(later - earlier).total_seconds() for earlier, later in pairwise(times)]
    base = app_ctx.config["WEBHOOK_RETRY_BASE"]
    assert all(wait >= 0.8 * base * 2**n for n, wait in enumerate(waits)), waits
    assert len(recovering.received) == 3
    assert len(broken.received) == 4
    for post in recovering.received + broken.received:
        assert post["valid"]
        assert post["payload"]["type"] == "run.failed"
        assert post["payload"]["run"]["errors"] == [
            {"step": "check_engine", "message": "no such user"}
        ]
    assert {p["payload"]["id"] for p in recovering.received} == {str(delivered.id)}

    # A final state written in a transaction that rolls back sends nothing.
    locked = lock_run(run.id)
    set_run_status(locked, RunStatus.PENDING)
    set_run_status(locked, RunStatus.FAILED)
    db.session.rollback()
    assert len(wait_deliveries(run.id, settled(2))) == 2
