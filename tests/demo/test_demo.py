"""`make demo`'s program on its embedded defaults: SQLite, fakeredis, no servers needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UP = "The services stay up"


def demo(state: Path, *extra: str) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CELERY_", "DATABASE_", "ERPNEXT_", "REDIS_"))
    }
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner.demo", "--latency", "zero", "--state-dir",
         str(state), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def read_until(proc: subprocess.Popen[str], text: str, timeout: float = 240) -> str:
    deadline, seen = time.monotonic() + timeout, []
    for line in proc.stdout:
        seen.append(line)
        if text in line or time.monotonic() > deadline:
            break
    out = "".join(seen)
    assert text in out, out[-3000:]
    return out


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (its children in their own sessions, what they forked)."""
    rows = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True)
    children: dict[int, list[int]] = {}
    for line in rows.stdout.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    running = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        running.add(pid)
    return running


def test_demo_provisions_a_workspace_end_to_end(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "provisioner.demo", "--once", "--latency", "zero",
         "--state-dir", str(tmp_path)],
        cwd=ROOT, env={k: v for k, v in os.environ.items()
                       if not k.startswith(("CELERY_", "DATABASE_", "ERPNEXT_", "REDIS_"))},
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert ": COMPLETED (100%)" in out, out[-3000:]
    for step in ("check_engine", "create_company", "create_demo_items", "open_pos_session"):
        assert f"✓ {step}" in out
    assert "API          http://127.0.0.1:" in out
    assert "Flower       http://127.0.0.1:" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_the_demo_stops_everything_it_started_on_hangup_and_term(tmp_path, signum):
    proc = demo(tmp_path)
    try:
        read_until(proc, UP)
        started = descendants(proc.pid)
        assert len(started) >= 5  # web and its worker, the worker and its pool, beat, Flower

        proc.send_signal(signum)

        assert proc.wait(timeout=60) == 0
        assert alive(started) == set()  # the demo waited for each of them before it exited
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
