"""Real Celery workers in subprocesses, which tests may kill with SIGKILL and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class WorkerPool:
    """One worker at a time. `queue` None: the queues of the settings (the steps' and the
    watchdog's, as a worker started without -Q consumes them); else -Q queue."""

    def __init__(self, app, queue: str | None, logdir: Path) -> None:
        self.app, self.queue, self.logdir = app, queue, logdir
        self.proc: subprocess.Popen | None = None
        self.name = ""
        self.log_path: Path | None = None
        self.started_once = False

    def ensure_running(self, concurrency: int = 2) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.start(concurrency)

    def start(
        self, concurrency: int = 2, pool: str = "prefork", prefetch: int = 1, **env: str
    ) -> None:
        """A new worker; `env` overrides this session's settings for it alone."""
        if not self.started_once:
            # Runs started by API tests before any worker existed are not this worker's job.
            self.app.extensions["celery"].control.purge()
            self.started_once = True
        self.name = f"test-{uuid.uuid4().hex[:6]}@%h"
        self.log_path = self.logdir / f"{self.name.split('@')[0]}.log"
        celery = str(Path(sys.executable).parent / "celery")
        queues = ["-Q", self.queue] if self.queue else []
        self.proc = subprocess.Popen(
            [celery, "-A", "provisioner", "worker", *queues, "-n", self.name,
             f"--concurrency={concurrency}", f"--pool={pool}", "--loglevel=INFO",
             f"--prefetch-multiplier={prefetch}", "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 reaches every process
        )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited at start:\n{self.log_tail()}")
            if "ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready in {timeout} s:\n{self.log_tail()}")

    def restart(self, concurrency: int = 2, pool: str = "prefork") -> None:
        self.stop_all()
        self.start(concurrency, pool)

    def child_pids(self) -> list[int]:
        """The prefork pool's processes (the ones that execute tasks)."""
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in out.stdout.split()]

    def kill_all(self) -> None:
        """SIGKILL the whole worker: main process and pool, no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop_all(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        """Until the worker's log holds `text` (e.g. a task id it revoked or discarded)."""
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in the worker's log:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
