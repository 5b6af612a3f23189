"""What a transaction changed in runs, announced around the commit that makes it.

Transitions note every run they change (`noted`) and every run that reaches a final state
(`finished`). Orchestration commits through `commit()`, which in this order: gives each
changed run the next version of its tenant's live state (a counter on the tenant's row,
which every change of a tenant's runs holds locked), sends `signals.changes_committing`
(listeners add what must commit with the change: the run's status snapshot, webhook
deliveries), commits, runs the after-commit callbacks and sends `signals.changes_committed`
(live updates). `rollback()` forgets what was noted. Nothing here fires by itself on a
commit made elsewhere.
"""

from __future__ import annotations

import logging

from provisioner import signals
from provisioner.extensions import db
from provisioner.models import Run, Tenant, latest_run
from provisioner.signals import Changes, LiveState

log = logging.getLogger(__name__)

_KEY = "provisioner.changes"


def noted(run: Run) -> None:
    """The run (or one of its steps) changed in the current transaction."""
    runs = _pending().runs
    if not any(run is r for r in runs):
        runs.append(run)


def finished(run: Run) -> None:
    """The run reached a final state in the current transaction."""
    noted(run)
    finished_runs = _pending().finished
    if not any(run is r for r in finished_runs):
        finished_runs.append(run)


def tenant_reshown(tenant: Tenant) -> None:
    """The tenant's latest run is another one now (its newest run was taken back)."""
    _pending().tenants.append(tenant)


def commit() -> None:
    """Commit the current transaction and announce what it changed."""
    changes: Changes | None = db.session.info.pop(_KEY, None)
    if changes is None:
        db.session.commit()
        return
    db.session.flush()  # ids and column defaults, before the snapshots read them
    _reshow(changes)
    for run in changes.runs:
        _next_version(run)
    signals.changes_committing.send(changes)
    changes.states.extend(_states(changes))
    db.session.commit()
    for callback in changes.after:
        try:
            callback()
        except Exception:
            log.exception("an after-commit action failed; the change itself is committed")
    signals.changes_committed.send(changes)


def rollback() -> None:
    """Roll the current transaction back, forgetting what it noted."""
    db.session.info.pop(_KEY, None)
    db.session.rollback()


def _pending() -> Changes:
    changes = db.session.info.get(_KEY)
    if changes is None:
        changes = db.session.info[_KEY] = Changes()
    return changes


def _next_version(run: Run) -> None:
    tenant = run.tenant
    tenant.live_version = (tenant.live_version or 0) + 1
    run.version = tenant.live_version


def _states(changes: Changes) -> list[LiveState]:
    """What each changed tenant shows now (read before the commit expires the rows)."""
    shown = [LiveState(r.tenant_id, r.version, r.id, r.status_doc) for r in changes.runs]
    with_run = {state.tenant_id for state in shown}
    idle = [
        LiveState(t.id, t.live_version, None, None) for t in changes.tenants if t.id not in with_run
    ]
    return shown + idle


def _reshow(changes: Changes) -> None:
    """A tenant whose newest run was taken back shows its previous run again, as a change."""
    for tenant in changes.tenants:
        previous = latest_run(tenant.id, with_steps=True)
        if previous is not None:
            changes.runs.append(previous)
        else:
            tenant.live_version = (tenant.live_version or 0) + 1
