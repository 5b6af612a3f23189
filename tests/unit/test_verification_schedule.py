"""The verification schedule's choice, tick after tick, for a fleet of workspaces (no database).

What `verification_schedule.tick` does with the rows it reads: every workspace verified once
per interval and never more often, a fleet made at once spread over the interval, an old
backlog drained most overdue first, and no tick starting more than an engine site's cap.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise

from provisioner.orchestration.verification_schedule import Candidate, due_at, pick

INTERVAL = 3600.0
TICK = 60.0
TICKS = int(INTERVAL / TICK)
CAP = 10  # VERIFY_PER_SITE
SITES = ("shared", "own-1")
# 400 per site: less than the 600 (CAP x 60 ticks) that one site can take per interval
TENANTS = {uuid.uuid4(): SITES[i % 2] for i in range(800)}
START = 1_800_000_123.0


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def simulate(created: float, ticks: int) -> tuple[list[Counter[str]], dict[uuid.UUID, list[float]]]:
    """Tick after tick from START, each verification done at once: what each tick starts,
    per site, and when each tenant was verified."""
    asked: dict[uuid.UUID, list[float]] = {tenant: [] for tenant in TENANTS}
    per_tick: list[Counter[str]] = []
    for n in range(ticks):
        now = START + n * TICK
        candidates = [
            Candidate(
                tenant, site, due_at(tenant, at(last[-1]) if last else None, at(created), INTERVAL)
            )
            for tenant, site in TENANTS.items()
            if not (last := asked[tenant]) or last[-1] <= now - INTERVAL
        ]
        chosen = pick(candidates, now, CAP, busy={})
        for candidate in chosen:
            asked[candidate.tenant_id].append(now)
        per_tick.append(Counter(c.site for c in chosen))
    return per_tick, asked


def test_a_fleet_made_at_once_is_spread_over_the_interval_then_verified_once_per_interval():
    late = 5 * TICK  # where more are due in a tick than the cap, some wait a tick or two
    per_tick, asked = simulate(created=START, ticks=3 * TICKS + 5)

    assert all(count <= CAP for tick in per_tick for count in tick.values())
    assert sum(1 for tick in per_tick[:TICKS] if tick) > TICKS * 0.9  # a trickle, not a burst
    for times in asked.values():
        assert len(times) in (3, 4)  # a 4th for those first verified in the first ticks
        assert START <= times[0] <= START + INTERVAL + late
        gaps = [later - earlier for earlier, later in pairwise(times)]
        assert all(INTERVAL <= gap <= INTERVAL + late for gap in gaps), gaps


def test_an_old_fleet_never_verified_drains_at_the_cap_most_overdue_first():
    created = START - 2 * INTERVAL
    per_tick, asked = simulate(created, ticks=1)

    assert per_tick == [{"shared": CAP, "own-1": CAP}]
    due = {t: due_at(t, None, at(created), INTERVAL) for t in TENANTS}
    for site in SITES:
        mine = [t for t, s in TENANTS.items() if s == site]
        started = [t for t in mine if asked[t]]
        assert max(due[t] for t in started) <= min(due[t] for t in mine if not asked[t])


def test_the_cap_counts_the_verifications_still_under_way():
    due = [Candidate(uuid.uuid4(), "shared", START - i) for i in range(20)]
    assert len(pick(due, START, CAP, busy={"shared": 7})) == 3
    assert pick(due, START, CAP, busy={"shared": CAP}) == []
    assert len(pick(due, START, CAP, busy={"own-1": CAP})) == CAP  # another site's are apart
    assert pick([Candidate(uuid.uuid4(), "shared", START + 1)], START, CAP, busy={}) == []


def test_the_offset_is_stable_and_within_one_interval_of_creation():
    tenant, created = uuid.uuid4(), at(START)
    first = due_at(tenant, None, created, INTERVAL)
    assert first == due_at(tenant, None, created, INTERVAL)
    assert START <= first < START + INTERVAL
    assert due_at(tenant, at(START + 5), created, INTERVAL) == START + 5 + INTERVAL
