"""The status document of a run (`GET …/status`), kept as a snapshot with every change.

Listens to `signals.changes_committing` (connected by the app factory, `connect()`): each
run a transaction changed gets its document written into `status_doc` in that same
transaction, so status reads and live streams serve it without building it per request.
"""

from __future__ import annotations

from provisioner import signals
from provisioner.schemas.run import status_document
from provisioner.signals import Changes


def connect() -> None:
    signals.changes_committing.connect(_snapshot)


def _snapshot(changes: Changes) -> None:
    for run in changes.runs:
        run.status_doc = status_document(run)
