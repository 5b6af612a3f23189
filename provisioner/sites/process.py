"""Run one command on the engine host: output streamed line by line, a time limit, stoppable.

The command gets a process group of its own, so that stopping it also stops what it
started (bench runs frappe in a child process, which runs mysqldump and the like). It is
stopped when it runs past its time limit, when the job is no longer wanted (asked every
CHECK_EVERY seconds), and when the worker process running it is told to die.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO

from provisioner.sites.base import JobCancelled, JobContext

CHECK_EVERY = 2.0  # seconds between "is the job still wanted?" questions
GRACE = 5.0  # seconds between SIGTERM and SIGKILL when stopping a command
KEPT_LINES = 2000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_EOF = None


@dataclass(frozen=True)
class Finished:
    returncode: int
    lines: tuple[str, ...]  # the last KEPT_LINES lines of output (stdout and stderr)


class TimedOut(Exception):
    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("the command did not finish in time")
        self.lines = tuple(lines)


def run(
    argv: Sequence[str], *, cwd: str, timeout: float, ctx: JobContext, quiet: bool = False
) -> Finished:
    """Run `argv` to its end. Each output line goes to `ctx.output` unless `quiet` (for
    commands whose output holds credentials). Raises TimedOut, JobCancelled or OSError (the
    command could not be started); in each case nothing of the command is left running."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    received: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read, args=(proc.stdout, received), daemon=True).start()
    lines: deque[str] = deque(maxlen=KEPT_LINES)
    try:
        with _stopped_if_this_process_is_terminated(proc):
            _follow(
                proc,
                received=received,
                deadline=time.monotonic() + timeout,
                lines=lines,
                ctx=ctx,
                quiet=quiet,
            )
    finally:
        if proc.poll() is None:
            stop(proc)
    return Finished(proc.returncode, tuple(lines))


def _follow(
    proc: subprocess.Popen[bytes],
    *,
    received: queue.Queue[str | None],
    deadline: float,
    lines: deque[str],
    ctx: JobContext,
    quiet: bool,
) -> None:
    next_check = time.monotonic() + CHECK_EVERY
    while True:
        try:
            line = received.get(timeout=0.2)
        except queue.Empty:
            line = ""
        if line is _EOF:
            break
        if line:
            lines.append(line)
            if not quiet:
                ctx.output(line)
        now = time.monotonic()
        if now > deadline:
            raise TimedOut(lines)
        if now >= next_check:
            next_check = now + CHECK_EVERY
            if not ctx.wanted():
                raise JobCancelled("the job was cancelled while the command ran; stopped it")
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        raise TimedOut(lines) from None


def _read(stream: IO[bytes], received: queue.Queue[str | None]) -> None:
    with stream:
        for raw in iter(stream.readline, b""):
            received.put(clean(raw))
    received.put(_EOF)


def clean(raw: bytes) -> str:
    """A line as a terminal would end up showing it: no colours, and of a line redrawn with
    carriage returns (progress bars) only its last state."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    return _ANSI.sub("", text.rsplit("\r", 1)[-1]).rstrip()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, then SIGKILL it if it has not ended in GRACE."""
    _signal_group(proc, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=GRACE)
    _signal_group(proc, signal.SIGKILL)
    proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


@contextmanager
def _stopped_if_this_process_is_terminated(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """Cancelling a job revokes its task with terminate=True: the pool process running it
    gets SIGTERM, whose default action kills it on the spot, and the command, in a process
    group of its own, would live on. Where SIGTERM has that default action (a prefork pool
    process), stop the command first, then die of the signal as before. Elsewhere (the
    worker's main process, a thread) signal handling is left alone."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL
    ):
        yield
        return

    def die(signum: int, _frame: object) -> None:
        stop(proc)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, die)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
