"""Locks that serialize work on one engine site across every worker on every machine.

ERPNext cannot create two companies on one site at once, and parallel creates of one
site-wide document (a customer name) yield renamed duplicates. On PostgreSQL the lock is
a session advisory lock: it lives on a database connection, so a worker killed while
holding it releases it with its connection. The embedded demo's SQLite has no such
lock; one machine runs the whole demo there, so a file lock does the same job.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from provisioner.steps.base import LockFactory


class LockTimeout(Exception):
    """Somebody else held the lock for too long; worth retrying later."""


def lock_key(key: str) -> int:
    """A stable signed 64-bit number for a lock name (what pg_advisory_lock takes)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def advisory_lock(engine: Engine, key: str, timeout: float) -> Iterator[None]:
    number = lock_key(key)
    # Autocommit: a free lock costs one statement to take and one to release, no transaction.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": number}):
            _wait(conn, key, number, timeout)
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": number})
            except DBAPIError:
                # The connection is broken; dropping it releases the lock on the server.
                conn.invalidate()


def _wait(conn: Connection, key: str, number: int, timeout: float) -> None:
    """Wait for a lock somebody else holds, at most `timeout` seconds."""
    try:
        # A session setting of a pooled connection: set for this wait only.
        conn.execute(
            text("SELECT set_config('lock_timeout', :ms, false)"),
            {"ms": f"{max(1, int(timeout * 1000))}ms"},
        )
        try:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": number})
        finally:
            conn.execute(text("RESET lock_timeout"))
    except DBAPIError as exc:
        raise LockTimeout(f"lock {key!r} still busy after {timeout:.0f} s") from exc


@contextmanager
def file_lock(directory: Path, key: str, timeout: float) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{lock_key(key) & 0xFFFFFFFFFFFFFFFF:016x}.lock"
    deadline = time.monotonic() + timeout
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"lock {key!r} still busy after {timeout:.0f} s") from None
                time.sleep(0.02)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)


def site_locks(engine: Engine, site_key: str, timeout: float, lock_dir: str = "") -> LockFactory:
    """A lock factory for one engine site: `lock(name)` serializes `name` on that site."""

    def lock(name: str) -> AbstractContextManager[None]:
        key = f"{site_key}|{name}"
        if engine.dialect.name == "postgresql":
            return advisory_lock(engine, key, timeout)
        folder = Path(lock_dir or os.path.join(tempfile.gettempdir(), "provisioner-locks"))
        return file_lock(folder, key, timeout)

    return lock
