"""What every benchmark shares: the machine, a scratch database, subprocesses, statistics."""

from __future__ import annotations

import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
SIM_KEY, SIM_SECRET = "bench-key", "bench-secret"
LOG_DIR = ROOT / "artifacts" / "bench"


def machine() -> dict[str, Any]:
    """Cores, memory and CPU model of this machine, and the versions that matter."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?"
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB (MemTotal {mem_kb} kB)",
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": _version(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "show server_version"]
        ),
        "redis": _redis_version(),
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _redis_version() -> str:
    import redis

    return str(redis.Redis.from_url(REDIS_URL).info("server").get("redis_version", "?"))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh PostgreSQL database `provisioner_bench_<rand>`, dropped afterwards."""
    import psycopg

    name = f"provisioner_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """A subprocess in its own process group (so stopping it reaches its children), logged."""

    def __init__(
        self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path = ROOT
    ) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = LOG_DIR / f"{name}.log"
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for_log(self, text: str, timeout: float = 60) -> Proc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            if text in self.log.read_text(errors="replace"):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready in {timeout} s:\n{self.tail()}")

    def wait_for_http(self, url: str, timeout: float = 60) -> Proc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            try:
                requests.get(url, timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} not answering in {timeout} s:\n{self.tail()}")

    def children(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in out.stdout.split()]

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its children so far (e.g. gunicorn's workers)."""
        total = 0
        for pid in (self.pid, *self.children()):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def private_venv(venv: Path, *requirements: str) -> Path:
    """The interpreter of a venv of its own with `requirements` (pip arguments), made once:
    the shipped code's, or a candidate server's that the product does not depend on."""
    stamp = venv / ".installed"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--disable-pip-version-check", *requirements], check=True)
        stamp.touch()
    return venv / "bin" / "python"


def rss_mib(pid: int) -> float:
    """Resident memory of one process (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_simulator(
    name: str, *, latency_s: float = 0.0, profile: str = "zero"
) -> tuple[Proc, str]:
    """The ERPNext simulator as its own process: a latency profile (zero, or `real`: a warm
    real site's), plus a fixed latency on every call if asked."""
    port = free_port()
    argv = [
        str(BIN / "python"),
        "-m",
        "provisioner.simulator",
        "--port",
        str(port),
        "--api-key",
        SIM_KEY,
        "--api-secret",
        SIM_SECRET,
        "--latency",
        profile,
    ]
    if latency_s:
        argv += ["--fault", f'{{"kind": "latency", "seconds": {latency_s}, "path": "^/api/"}}']
    url = f"http://127.0.0.1:{port}"
    proc = Proc(name, argv, dict(os.environ))
    proc.wait_for_http(url + "/__simulator__/health")
    return proc, url


def start_worker(
    name: str,
    queue: str,
    *,
    concurrency: int,
    pool: str = "prefork",
    include: str = "",
    env: dict[str, str] | None = None,
) -> Proc:
    argv = [
        str(BIN / "celery"),
        "-A",
        "provisioner",
        "worker",
        "-Q",
        queue,
        "-n",
        f"{name}@%h",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    if include:
        argv.append(f"--include={include}")
    return Proc(name, argv, {**os.environ, **(env or {})}).wait_for_log("ready.")


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def purge_queue(queue: str) -> int:
    """Drop every message waiting in a Redis-backed Celery queue; how many there were."""
    import redis

    conn = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    deadline = time.monotonic() + 60
    while True:  # others' outage tests may stop Redis for a moment on a shared machine
        try:
            count = int(conn.llen(queue))
            conn.delete(queue)
            return count
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
