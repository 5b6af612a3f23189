"""The rules of the status memory (`api/not_modified.Memory`), without a server: what it may
be told, when it stops trusting what it was told."""

from __future__ import annotations

import time

import pytest

from provisioner.api import not_modified
from provisioner.api.not_modified import Memory

TENANT, TOKEN, TAG = "6f1c1d4e-0000-4000-8000-000000000001", "token", '"7"'
LATER = time.time() + 3600  # the token's expiry


@pytest.fixture
def memory() -> Memory:
    found = Memory(seconds=5)
    found.connected()
    return found


def told(memory: Memory, tenant: str = TENANT, token: str = TOKEN) -> Memory:
    memory.confirm(memory.mark(), token, tenant, TAG, LATER)
    return memory


def test_it_answers_what_the_database_confirmed(memory):
    assert told(memory).current(TOKEN, TENANT, TAG)
    assert not memory.current(TOKEN, TENANT, '"8"')  # another tag
    assert not memory.current("other-token", TENANT, TAG)  # another caller
    assert not memory.current(TOKEN, "another-tenant", TAG)


def test_nothing_is_trusted_before_the_feed_subscribed_or_after_it_was_lost():
    memory = Memory(seconds=5)
    assert not memory.listening
    assert not told(memory).current(TOKEN, TENANT, TAG)
    memory.connected()
    assert told(memory).current(TOKEN, TENANT, TAG)
    memory.disconnected()
    assert not memory.listening
    assert not memory.current(TOKEN, TENANT, TAG)
    assert not told(memory).current(TOKEN, TENANT, TAG)  # confirmed while deaf: void


def test_a_change_heard_drops_the_tag_and_voids_a_read_made_before_it(memory):
    told(memory).changed(TENANT)
    assert not memory.current(TOKEN, TENANT, TAG)
    mark = memory.mark()  # a read starts ...
    memory.changed(TENANT)  # ... a change commits and is heard ...
    memory.confirm(mark, TOKEN, TENANT, TAG, LATER)  # ... the read's older answer arrives
    assert not memory.current(TOKEN, TENANT, TAG)
    memory.changed("another-tenant")  # a change elsewhere voids nothing here
    assert told(memory).current(TOKEN, TENANT, TAG)


def test_access_taken_away_drops_every_grant_and_voids_reads_in_flight(memory):
    told(memory)
    mark = memory.mark()
    memory.access_changed()
    assert not memory.current(TOKEN, TENANT, TAG)
    memory.confirm(mark, TOKEN, TENANT, TAG, LATER)
    assert not memory.current(TOKEN, TENANT, TAG)


def test_what_was_confirmed_is_trusted_for_its_seconds_and_never_past_the_token(
    memory, monkeypatch
):
    now = time.monotonic()
    told(memory)
    monkeypatch.setattr(not_modified.time, "monotonic", lambda: now + 4.9)
    assert memory.current(TOKEN, TENANT, TAG)
    monkeypatch.setattr(not_modified.time, "monotonic", lambda: now + 5.1)
    assert not memory.current(TOKEN, TENANT, TAG)
    monkeypatch.undo()
    memory.confirm(memory.mark(), TOKEN, TENANT, TAG, time.time() - 1)  # expired token
    assert not memory.current(TOKEN, TENANT, TAG)


def test_it_starts_again_when_full(memory, monkeypatch):
    monkeypatch.setattr(not_modified, "MAX_ENTRIES", 3)
    for n in range(3):
        told(memory, tenant=f"t{n}")
    assert memory.current(TOKEN, "t2", TAG)
    told(memory, tenant="t3")  # the fourth: everything is forgotten, the database refills it
    assert not memory.current(TOKEN, "t2", TAG)
    assert told(memory, tenant="t3").current(TOKEN, "t3", TAG)
