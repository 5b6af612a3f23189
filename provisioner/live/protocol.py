"""What the publishers and the live process agree on in Redis: keys, channels, one Lua script.

Per workspace, Redis holds its latest frame in a hash `provisioner:live:state:<tenant_id>`
(fields `version`, `event`, `data`, `run_id`) and announces it on the channel
`provisioner:live:frame:<tenant_id>` as `<version> <event>\\n<data>`, where `data` is the
compact JSON the stream sends. Both happen in one Lua script, and only when the version is
newer than the stored one: publishers in different workers may commit in one order and
publish in another, and no stream may go back in time.

The live process PSUBSCRIBEs `provisioner:live:frame:*` once (one command to subscribe again
after a Redis restart, nothing to subscribe or unsubscribe as streams come and go); every
live process then receives every workspace's changes, which at this service's rate (a few
hundred transitions a second at most) costs less than per-workspace bookkeeping would.

The stored state expires after STATE_TTL_SECONDS (a day): it is a cache of PostgreSQL, and a
day outlives any run (parked runs included) so that the page of a live run never needs the
database, while finished workspaces stop costing Redis memory; a stream of an expired one
reads PostgreSQL once and stores the result again. Version 0 is the `idle` frame of a
workspace that has no run yet; run versions start at 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

STATE_PREFIX = "provisioner:live:state:"
CHANNEL_PREFIX = "provisioner:live:frame:"
CHANNEL_PATTERN = CHANNEL_PREFIX + "*"
# Announced after a commit that takes access away (a user disabled or given a new password,
# a member removed): processes that remember grants (`api.not_modified`) forget them.
ACCESS_CHANNEL = "provisioner:live:access"
STATE_TTL_SECONDS = 24 * 3600
IDLE_MESSAGE = "not provisioned yet"

# KEYS[1] state hash; ARGV: version, event, data, run_id, ttl, channel ("" = do not publish).
# Returns {1 if stored else 0, version, event, data} of the state that is now current.
STORE_IF_NEWER = """
local current = redis.call('HMGET', KEYS[1], 'version', 'event', 'data')
if current[1] and tonumber(current[1]) >= tonumber(ARGV[1]) then
  return {0, current[1], current[2], current[3]}
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'event', ARGV[2], 'data', ARGV[3],
           'run_id', ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
if ARGV[6] ~= '' then
  redis.call('PUBLISH', ARGV[6], ARGV[1] .. ' ' .. ARGV[2] .. '\\n' .. ARGV[3])
end
return {1, ARGV[1], ARGV[2], ARGV[3]}
"""


def state_key(tenant_id: object) -> str:
    return f"{STATE_PREFIX}{tenant_id}"


def channel(tenant_id: object) -> str:
    return f"{CHANNEL_PREFIX}{tenant_id}"


def store_arguments(
    tenant_id: object,
    run_id: object,
    state: State,
    *,
    announce: bool = True,
    ttl_seconds: int = STATE_TTL_SECONDS,
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of STORE_IF_NEWER (sync publishers and the async live process)."""
    args: list[str | int] = [state.version, state.event, state.data, str(run_id or "")]
    return [state_key(tenant_id)], [*args, ttl_seconds, channel(tenant_id) if announce else ""]


def compact(document: Any) -> str:
    """JSON as today's stream sends it."""
    return json.dumps(document, separators=(",", ":"))


@dataclass(frozen=True)
class State:
    """A workspace's latest frame: `event` is `status` or `idle`, `data` its JSON text."""

    version: int
    event: str
    data: str

    @classmethod
    def idle(cls, tenant_id: object) -> State:
        return cls(0, "idle", compact({"tenant_id": str(tenant_id), "message": IDLE_MESSAGE}))

    @classmethod
    def from_message(cls, payload: bytes) -> State:
        """A published `<version> <event>\\n<data>` (ValueError if it is not one)."""
        head, _, data = payload.decode().partition("\n")
        version, event = head.split(" ", 1)
        return cls(int(version), event, data)

    @classmethod
    def from_script(cls, reply: list[Any]) -> State:
        _stored, version, event, data = (x.decode() if isinstance(x, bytes) else x for x in reply)
        return cls(int(version), str(event), str(data))
