"""`make demo`: the whole service on embedded defaults, provisioning one workspace end to end.

No PostgreSQL, Redis or ERPNext needed: SQLite holds the state, fakeredis's TCP server is
the broker, and the ERPNext simulator stands in for the engine. Every process type of the
Procfile runs as a real process, exactly as in production: the API (gunicorn), the live
process (the pages' streams), a Celery worker, beat and Flower. Ctrl-C, SIGTERM and SIGHUP
(the terminal closed) stop them all: they run in sessions of their own, so only the demo
decides when they end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
ADMIN = ("demo@example.com", "demo-password")
FLOWER_AUTH = "demo:demo"
PORTS_FROM = 20000
MARKS = {"completed": "✓", "failed": "✗", "skipped": "-", "not_reached": "·", "cancelled": "✗"}


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range: the demo picks its ports before
    it starts the servers, and meanwhile the processes' own outgoing connections take
    ephemeral ports (what port 0 hands out too), which would leave a server unable to bind."""
    ports = range(PORTS_FROM, max(_ephemeral_low(), PORTS_FROM + 1000))
    for port in random.sample(ports, 100):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {PORTS_FROM} and the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; elsewhere a guess


class Services:
    """The demo's processes and in-process servers, stopped together."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.logs = state / "logs"
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.stoppers: list[Any] = []

    def start_broker(self, port: int) -> str:
        from fakeredis import TcpFakeServer

        server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
        threading.Thread(target=server.serve_forever, name="broker", daemon=True).start()
        self.stoppers.append(server.shutdown)
        return f"redis://127.0.0.1:{port}"

    def start_simulator(self, port: int, latency: str) -> str:
        from provisioner.simulator import SimulatorServer, create_simulator

        app = create_simulator(
            api_key="demo-key",
            api_secret="demo-secret",
            latency=latency,
            state_file=str(self.state / "simulator.json"),
        )
        server = SimulatorServer(app, host="127.0.0.1", port=port).start()
        self.stoppers.append(server.stop)
        return server.url

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.logs / f"{name}.log").open("w")
        # A session of its own: a closed terminal's SIGHUP (gunicorn's "reload") or a Ctrl-C
        # reaches the demo only, which then stops every process it started.
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append((name, proc))

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited ({proc.returncode}); see {self.logs}/{name}.log")

    def stop(self) -> None:
        """Stop every process group it started (each process with what it forked)."""
        for signum in STOP_SIGNALS:  # a second Ctrl-C or hang-up must not cut this short
            signal.signal(signum, signal.SIG_IGN)
        for _, proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        for stop in self.stoppers:
            with contextlib.suppress(Exception):
                stop()


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


def wait_for(url: str, timeout: float, services: Services, **kwargs: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2, **kwargs).status_code < 500:
                return
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def run(cmd: list[str], env: dict[str, str]) -> None:
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def provision(api: str, name: str, timeout: float) -> str:
    """Create a workspace through the API and print each step as it changes; the final status."""
    token = requests.post(
        f"{api}/api/v1/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=10
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    created = requests.post(
        f"{api}/api/v1/tenants",
        headers=auth,
        timeout=10,
        json={
            "name": name,
            "country_code": "KE",
            "admin_email": "owner@demo-coffee.example",
            "admin_name": "Demo Owner",
            "admin_password": "owner-password",
            "category": "restaurant",
            "provision": False,
        },
    )
    created.raise_for_status()
    tenant_id = created.json()["tenant"]["id"]
    requests.post(
        f"{api}/api/v1/provisioning/tenants/{tenant_id}/start",
        headers=auth,
        timeout=10,
        json={"provisioning_type": "FULL_POS", "include_demo_data": True},
    ).raise_for_status()
    print(f"\nWorkspace {name!r} created ({tenant_id}); provisioning FULL_POS with demo items:\n")
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = requests.get(
            f"{api}/api/v1/provisioning/tenants/{tenant_id}/status", headers=auth, timeout=10
        ).json()
        for step in status["steps"]:
            shown = f"{step['status']}:{step['attempts']}"
            if seen.get(step["name"]) != shown and step["status"] != "pending":
                seen[step["name"]] = shown
                print("  " + step_line(step), flush=True)
        if status["status"] not in ("PENDING", "IN_PROGRESS"):
            break
        time.sleep(0.25)
    print(f"\nRun {status.get('run_id')}: {status.get('status')} ({status.get('progress')}%)")
    return status.get("status", "UNKNOWN")


def step_line(step: dict[str, Any]) -> str:
    mark = MARKS.get(step["status"], "…")
    took = f"{step['duration_ms']} ms" if step.get("duration_ms") is not None else ""
    detail = step.get("note") or (step.get("error") or {}).get("message") or ""
    return f"{mark} {step['name']:<26} {step['status']:<11} {took:>9}  {detail}".rstrip()


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", default=str(ROOT / ".demo"))
    parser.add_argument("--latency", default="real", help="simulator latency: real, zero, a scale")
    parser.add_argument("--name", default="Demo Coffee House")
    parser.add_argument("--once", action="store_true", help="stop everything when provisioned")
    args = parser.parse_args(argv)
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)

    state = Path(args.state_dir).resolve()
    shutil.rmtree(state, ignore_errors=True)
    (state / "logs").mkdir(parents=True)
    services = Services(state)
    ports = {name: free_port() for name in ("broker", "simulator", "api", "live", "flower")}
    try:
        broker = services.start_broker(ports["broker"])
        engine = services.start_simulator(ports["simulator"], args.latency)
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": f"sqlite:///{state / 'provisioner.db'}",
            "CELERY_BROKER_URL": f"{broker}/0",
            "CELERY_RESULT_BACKEND": f"{broker}/1",
            "ERPNEXT_URL": engine,
            "ERPNEXT_API_KEY": "demo-key",
            "ERPNEXT_API_SECRET": "demo-secret",
            "SECRET_KEY": "demo-secret-key-not-for-production",
            "LOCK_DIR": str(state / "locks"),
            "FLOWER_BASIC_AUTH": FLOWER_AUTH,
            "LIVE_HOST": "127.0.0.1",
            "LIVE_PORT": str(ports["live"]),
            # No reverse proxy here: the pages open their streams on the live port itself.
            "LIVE_PUBLIC_URL": f"http://127.0.0.1:{ports['live']}",
        }
        bin_dir = Path(sys.executable).parent
        run([str(bin_dir / "flask"), "--app", "wsgi", "db", "upgrade"], env)
        run(
            [str(bin_dir / "flask"), "--app", "wsgi", "users", "create", ADMIN[0],
             "--password", ADMIN[1], "--admin"],
            env,
        )  # fmt: skip
        api = f"http://127.0.0.1:{ports['api']}"
        flower = f"http://127.0.0.1:{ports['flower']}"
        services.spawn(
            "web",
            [str(bin_dir / "gunicorn"), "--config", "gunicorn.conf.py",
             "--bind", f"127.0.0.1:{ports['api']}", "--workers", "1", "wsgi:app"],
            env,
        )  # fmt: skip
        services.spawn("live", [sys.executable, "-m", "provisioner.live"], env)
        services.spawn(
            "worker",
            [str(bin_dir / "celery"), "-A", "provisioner", "worker", "--loglevel=INFO",
             "--concurrency=2", "--hostname=demo@%h"],
            env,
        )  # fmt: skip
        services.spawn(
            "beat",
            [str(bin_dir / "celery"), "-A", "provisioner", "beat", "--loglevel=INFO",
             f"--schedule={state / 'celerybeat-schedule'}"],
            env,
        )  # fmt: skip
        services.spawn(
            "flower",
            [str(bin_dir / "celery"), "-A", "provisioner", "flower", f"--port={ports['flower']}",
             "--address=127.0.0.1"],
            env,
        )  # fmt: skip
        live = env["LIVE_PUBLIC_URL"]
        print(f"Starting: API {api}, live {live}, worker, beat, Flower {flower}, "
              f"ERPNext simulator {engine}")  # fmt: skip
        wait_for(f"{api}/healthz", 60, services)
        wait_for(f"{live}/healthz", 60, services)
        wait_for(flower, 60, services, auth=tuple(FLOWER_AUTH.split(":")))
        outcome = provision(api, args.name, timeout=300)
        print(
            f"\n  API          {api}/api/v1  (sign in as {ADMIN[0]} / {ADMIN[1]})"
            f"\n  Workspaces   {api}/workspaces  (the page; live updates from {live})"
            f"\n  Flower       {flower}  (user demo, password demo)"
            f"\n  Simulator    {engine}  (faults: {engine}/__simulator__/faults)"
            f"\n  Logs         {services.logs}"
        )
        if args.once:
            return 0 if outcome == "COMPLETED" else 1
        print("\nThe services stay up; press Ctrl-C to stop them.", flush=True)
        while True:
            time.sleep(1)
            services.check_alive()
    except KeyboardInterrupt:
        return 0
    finally:
        print("Stopping…", flush=True)
        services.stop()


if __name__ == "__main__":
    sys.exit(main())
