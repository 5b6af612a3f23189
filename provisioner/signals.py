"""What orchestration announces about the runs a transaction changed.

Orchestration sends these itself, around the commit that makes a change (see
`orchestration.changes.commit`); it never imports who listens. The app factory connects the
listeners (webhooks, live updates), so the side effects of a transition are visible here and
in `app.py`, not hidden in session events.

- `changes_committing(changes)`: inside the transaction, just before it commits. Listeners
  may add rows that must commit with the change (webhook deliveries of a finished run) and
  `changes.after_commit(callback)` what must wait for the commit.
- `changes_committed(changes)`: after the commit. Listeners publish `changes.states`
  (live updates); they must not raise, the change is committed whatever they do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blinker import Namespace

from provisioner.models import Run, Tenant

_signals = Namespace()


@dataclass(frozen=True)
class LiveState:
    """What a tenant's page shows now, as committed: plain values, no database rows."""

    tenant_id: uuid.UUID
    version: int
    run_id: uuid.UUID | None  # None: the tenant has no run (left)
    document: dict[str, Any] | None  # the run's status document


@dataclass
class Changes:
    """The runs one transaction changed, and what to do once it has committed."""

    runs: list[Run] = field(default_factory=list)  # in the order first noted
    finished: list[Run] = field(default_factory=list)  # reached a final state
    # Tenants whose latest run must be shown again (their newest run was taken back).
    tenants: list[Tenant] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)
    # Filled just before the commit, for the listeners of `changes_committed`.
    states: list[LiveState] = field(default_factory=list)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction has committed (never if it rolls back)."""
        self.after.append(callback)


changes_committing = _signals.signal("changes-committing")
changes_committed = _signals.signal("changes-committed")
# Sent after a commit that took access away (a user disabled or given a new password, a
# member removed); listeners forget what they remembered of it (`live.announce`).
access_revoked = _signals.signal("access-revoked")
