"""Status polls answered 304 from the web process's memory (`api/not_modified.py`, issue 12).

Real app, PostgreSQL and Redis, with STATUS_MEMORY_SECONDS at 600 s: whatever a poll sees
change within these tests' few seconds, only the Redis feed can have told the memory, not
the expiry. Tried for real: a change committed elsewhere, a user disabled or given a new
password through the CLI, a member removed through the API, the feed's Redis connection
killed. Each must end the memory's 304s at once (a poll then reads the database).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import event

from provisioner import create_app
from provisioner.api.not_modified import MEMORY, Memory
from provisioner.extensions import db
from provisioner.models import Role
from provisioner.security import tokens
from tests.helpers import finished_run, new_tenant, start, wait_for
from tests.integration.conftest import Api, join, make_user

pytestmark = pytest.mark.integration
V1 = "/api/v1/provisioning/tenants"


@pytest.fixture(scope="module")
def remembering(app) -> Any:
    """A second app on the session's database, its status memory on."""
    return create_app({"TESTING": True, "STATUS_MEMORY_SECONDS": 600})


@pytest.fixture
def memory(remembering) -> Memory:
    return remembering.extensions[MEMORY]


@pytest.fixture
def poll(app_ctx, remembering) -> Callable[..., Any]:
    client = remembering.test_client()

    def get(token: str, tenant_id: object, tag: str | None = None, **headers: str) -> Any:
        headers["Authorization"] = f"Bearer {token}"
        if tag:
            headers["If-None-Match"] = tag
        return client.get(f"{V1}/{tenant_id}/status", headers=headers)

    return get


@pytest.fixture
def statements(remembering) -> Iterator[list[str]]:
    """The SQL statements the remembering app sends meanwhile, on every engine of it."""
    sent: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    with remembering.app_context():
        engines = list(db.engines.values())
    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    yield sent
    for engine in engines:
        event.remove(engine, "before_cursor_execute", note)


def remembered(poll, memory: Memory, token: str, tenant_id: object) -> str:
    """The workspace's tag, once the memory holds it for this token (the feed subscribed)."""
    tag = poll(token, tenant_id).headers["ETag"]
    poll(token, tenant_id, tag)  # a conditional poll starts the feed
    wait_for(lambda: memory.listening, 15, "the feed subscribed")
    assert poll(token, tenant_id).status_code == 200  # read, and confirmed
    return tag


def owned_workspace() -> tuple[Any, Any, str]:
    """A workspace with a finished run, its owner and the owner's token."""
    tenant = new_tenant()
    finished_run(tenant)
    owner = make_user()
    join(owner, tenant, Role.OWNER)
    return tenant, owner, tokens.issue(owner.id, owner.token_version)[0]


def test_a_poll_is_answered_from_memory_without_the_database(poll, memory, statements):
    tenant, _owner, token = owned_workspace()
    tag = remembered(poll, memory, token, tenant.id)
    statements.clear()

    answer = poll(token, tenant.id, tag, **{"X-Correlation-ID": "poll-2"})

    assert answer.status_code == 304
    assert statements == [], "a 304 from memory reads nothing"
    assert answer.headers["ETag"] == tag
    assert answer.headers["Cache-Control"] == "private, no-cache"
    assert answer.headers["X-Correlation-ID"] == "poll-2"
    assert answer.data == b""
    # What memory cannot decide goes to the database: another tag, a weak one, a list.
    for other, status in (('"0"', 200), (f"W/{tag}", 200), (f'"0", {tag}', 304)):
        statements.clear()
        assert poll(token, tenant.id, other).status_code == status, other
        assert statements, other
    # Another token of the same person, or another workspace's id: not remembered.
    statements.clear()
    assert poll(_second_token(_owner), tenant.id, tag).status_code == 304
    assert statements


def test_a_change_committed_elsewhere_ends_the_304s_at_once(poll, memory):
    tenant, _owner, token = owned_workspace()
    tag = remembered(poll, memory, token, tenant.id)
    assert poll(token, tenant.id, tag).status_code == 304

    start(tenant)  # a new run: committed, announced on the live channel

    answer = wait_for(lambda: (a := poll(token, tenant.id, tag)).status_code == 200 and a,
                      15, "the poll saw the new run")  # fmt: skip
    assert answer.headers["ETag"] != tag
    assert answer.json["status"] == "PENDING"


@pytest.mark.parametrize("how", ["disable", "set-password", "remove member"])
def test_access_taken_away_ends_the_304s_at_once(app_ctx, client, poll, memory, how):
    tenant, owner, token = owned_workspace()
    member = make_user()
    join(member, tenant, Role.MEMBER)
    member_token = tokens.issue(member.id, member.token_version)[0]
    tag = remembered(poll, memory, member_token, tenant.id)
    assert poll(member_token, tenant.id, tag).status_code == 304

    if how == "remove member":
        removed = Api(client, owner).request(
            "DELETE", f"/api/v1/tenants/{tenant.id}/members/{member.id}"
        )
        assert removed.status_code == 204
    else:
        args = [how, member.email] + (
            ["--password", "a-new-password"] if how == "set-password" else []
        )
        done = app_ctx.test_cli_runner().invoke(args=["users", *args])
        assert done.exit_code == 0, done.output

    refused = 404 if how == "remove member" else 401
    wait_for(lambda: poll(member_token, tenant.id, tag).status_code == refused, 15,
             f"{refused} after {how}")  # fmt: skip
    assert poll(token, tenant.id, tag).status_code == 304  # the owner still reads


def test_a_lost_feed_makes_the_memory_forget(poll, memory, statements):
    tenant, _owner, token = owned_workspace()
    tag = remembered(poll, memory, token, tenant.id)
    statements.clear()
    assert poll(token, tenant.id, tag).status_code == 304
    assert statements == []

    killed = _kill_feed_connections()
    assert killed >= 1
    wait_for(lambda: not memory.current(token, str(tenant.id), tag), 15, "the memory forgot")
    wait_for(lambda: memory.listening, 15, "the feed subscribed again")

    assert poll(token, tenant.id, tag).status_code == 304
    assert statements, "after the feed was lost, the poll read the database"


def _kill_feed_connections() -> int:
    """Kill this process's status feed connection(s) in Redis, as a Redis restart would."""
    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    name = f"provisioner-status-feed-{os.getpid()}"
    ids = [c["id"] for c in r.client_list() if c.get("name") == name]
    for client_id in ids:
        r.client_kill_filter(_id=client_id)
    return len(ids)


def _second_token(user) -> str:
    """Another token of the same person (issued a second later: other claims, other text)."""
    time.sleep(1.1)
    return tokens.issue(user.id, user.token_version)[0]
