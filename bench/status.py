"""Part: `GET …/status` of issue 12 — the shipped code, this code and a bare floor, side by side.

Four gunicorn servers, each with the shipped settings (`gunicorn.conf.py`: 2 workers x 8
threads, gthread, access log on), started together and loaded in turn, interleaved:

- **shipped**: the code of `BENCH_BASELINE_REF` (default: the end of stage 1), unpacked by
  `git archive` into `artifacts/bench/baseline/<sha>`, with a venv of its own
  `requirements.txt` and its own scratch database, filled by its own `bench/context.py`;
- **now**: this checkout, on the run's scratch database, its 304s from memory after the
  first read (`api/not_modified.py`, STATUS_MEMORY_SECONDS 5 s, the default);
- **now-db**: the same with STATUS_MEMORY_SECONDS=0: every 304 reads PostgreSQL;
- **floor**: `bench/floor.py`, a bare Flask + Flask-SQLAlchemy app reading a run and its nine
  steps in two indexed queries (no authentication, no hooks).

Load: `wrk`, 2 threads, 50 connections, every request cycling over 50 workspaces with a run
(a generated Lua script); `304` answers send each workspace's current ETag. CPU per request:
the server's processes' user + system time over the measurement / requests answered
(PostgreSQL's own time is not in it). Nothing here is asserted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import requests

from bench.api import HOST, gunicorn_command, start_gunicorn
from bench.common import (
    BIN,
    LOG_DIR,
    ROOT,
    Proc,
    median,
    private_venv,
    purge_queue,
    scratch_database,
)
from bench.context import Bench

BASELINE_REF = os.environ.get("BENCH_BASELINE_REF", "b795a13")
CONNECTIONS = 50
WORKSPACES = 50
V1 = "/api/v1/provisioning/tenants"
RATE_GOAL, NOT_MODIFIED_GOAL = 1000.0, 5000.0
MEMORY_OFF = "now-db"  # this code with STATUS_MEMORY_SECONDS=0: every 304 reads PostgreSQL

# Run by the baseline's own interpreter in its own tree: its workspaces, runs and token.
_BASELINE_SETUP = """
import json, os, sys
from bench.common import purge_queue
from bench.context import bench_env, setup
os.environ.update(bench_env(sys.argv[1]))
bench = setup()
ids = bench.tenants(int(sys.argv[2]), "Status")
bench.start_runs(ids)
purge_queue(bench.queue)
print(json.dumps({"token": bench.token, "tenants": ids, "env": bench_env(sys.argv[1])}))
"""

_LUA = """
local paths = {%(paths)s}
local tags = {%(tags)s}
local token = "%(token)s"
local i = 0
request = function()
  i = i %% #paths + 1
  local headers = {["Authorization"] = "Bearer " .. token, ["Accept"] = "application/json"}
  if #tags > 0 then headers["If-None-Match"] = tags[i] end
  return wrk.format("GET", paths[i], headers)
end
"""


class Server:
    """One gunicorn under test: how to reach it and what to ask it."""

    def __init__(  # noqa: PLR0917
        self, label: str, proc: Proc, port: int, command: str, token: str, paths: list[str]
    ) -> None:
        self.label, self.proc, self.port, self.command = label, proc, port, command
        self.token, self.paths = token, paths

    def script(self, name: str, tags: list[str] | None = None) -> Path:
        path = LOG_DIR / f"wrk-{self.label}-{name}.lua"
        quoted = {
            "paths": ", ".join(json.dumps(p) for p in self.paths),
            "tags": ", ".join(json.dumps(t) for t in tags or []),
            "token": self.token,
        }
        path.write_text(_LUA % quoted)
        return path

    def etags(self) -> list[str]:
        """Each path's current ETag (asked once, as a poller's first read would)."""
        out = []
        for path in self.paths:
            url, auth = f"http://{HOST}:{self.port}{path}", f"Bearer {self.token}"
            answer = requests.get(url, headers={"Authorization": auth}, timeout=10)
            answer.raise_for_status()
            out.append(answer.headers["ETag"])
        return out


def run(bench: Bench, *, repeats: int, seconds: float) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit(
            "bench part 'status' needs wrk (Debian's package wrk; make bench installs it)"
        )
    with ExitStack() as stack:
        servers = [
            stack.enter_context(shipped()),
            stack.enter_context(_now(bench)),
            stack.enter_context(_now(bench, MEMORY_OFF, STATUS_MEMORY_SECONDS="0")),
            stack.enter_context(_floor(bench)),
        ]
        tests: list[tuple[Server, str, Path]] = []
        for server in servers:
            if server.label != MEMORY_OFF:
                tests.append((server, "200", server.script("200")))
            if server.label in ("now", MEMORY_OFF):
                tests.append((server, "304", server.script("304", server.etags())))
            if server.label == "floor":
                paths = [p.replace("/floor/", "/ceiling/") for p in server.paths]
                ceiling = Server(
                    "ceiling", server.proc, server.port, server.command, "unused", paths
                )
                tests.append((ceiling, "304", ceiling.script("304")))
        for server, _name, script in tests:  # warm-up, not counted
            _wrk(server, script, 1.0)
        runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for repeat in range(repeats):
            for server, name, script in tests:
                figures = _wrk(server, script, seconds)
                print(f"  status [{server.label} {name}] #{repeat + 1}: {figures}", flush=True)
                runs[f"{server.label} {name}"].append(figures)
        commands = {s.label: s.command for s in servers}
    medians = {key: _medians(rs) for key, rs in runs.items()}
    return {"runs": runs, "medians": medians, "verdicts": verdicts(medians),
            "commands": commands, "baseline_ref": BASELINE_REF, "repeats": repeats,
            "seconds": seconds, "connections": CONNECTIONS, "workspaces": WORKSPACES}  # fmt: skip


def verdicts(m: dict[str, dict[str, float]]) -> dict[str, str]:
    now, floor, not_modified = m["now 200"], m["floor 200"], m["now 304"]
    return {
        f"status ≥ {RATE_GOAL:.0f} req/s at saturation": _verdict(
            now["req_per_s"] >= RATE_GOAL, f"{now['req_per_s']:.0f} req/s"),
        "status at least as fast as the floor": _verdict(
            now["req_per_s"] >= floor["req_per_s"],
            f"{now['req_per_s']:.0f} against {floor['req_per_s']:.0f} req/s"),
        f"304 ≥ {NOT_MODIFIED_GOAL:.0f} req/s": _verdict(
            not_modified["req_per_s"] >= NOT_MODIFIED_GOAL,
            f"{not_modified['req_per_s']:.0f} req/s"),
    }  # fmt: skip


def _verdict(ok: bool, value: str) -> str:
    return f"{'PASS' if ok else 'FAIL'} ({value})"


def _medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = ("req_per_s", "p50_ms", "p99_ms", "cpu_ms_per_request")
    out = {k: round(median([r[k] for r in runs]), 3) for k in keys}
    return out | {"non_2xx_3xx": sum(r["non_2xx_3xx"] for r in runs),
                  "socket_errors": sum(r["socket_errors"] for r in runs)}  # fmt: skip


def _wrk(server: Server, script: Path, seconds: float) -> dict[str, Any]:
    before = server.proc.cpu_seconds()
    argv = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency", "-s", str(script),
            f"http://{HOST}:{server.port}/"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    cpu = server.proc.cpu_seconds() - before
    figures = parse_wrk(out.stdout)
    figures["cpu_ms_per_request"] = round(cpu * 1000 / max(1, figures["requests"]), 3)
    return figures


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests, req/s, p50/p99 (ms), non-2xx/3xx answers and socket errors of wrk's report."""

    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", text, re.MULTILINE))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )

    def number(pattern: str) -> float:
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    return {
        "requests": int(number(r"(\d+) requests in")),
        "req_per_s": number(r"Requests/sec:\s+([\d.]+)"),
        "p50_ms": round(ms(pct["50"]), 2),
        "p99_ms": round(ms(pct["99"]), 2),
        "non_2xx_3xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


@contextmanager
def _served(
    label: str,
    app: str,
    env: dict[str, str],
    token: str,
    paths: list[str],
    *,
    ready: str = "/api/v1/openapi.json",
    cwd: Path = ROOT,
    bin_dir: Path = BIN,
) -> Iterator[Server]:
    """gunicorn with the shipped settings (2x8) serving `app`; stopped after."""
    proc, port = start_gunicorn(2, 8, app=app, env=env, ready=ready, cwd=cwd, bin_dir=bin_dir,
                                name=f"status-{label}")  # fmt: skip
    command = gunicorn_command(port, 2, 8, app, bin_dir)
    if cwd != ROOT:
        command += f" (in {cwd.relative_to(ROOT)})"
    try:
        yield Server(label, proc, port, command, token, paths)
    finally:
        proc.stop()


def _workspaces(bench: Bench, prefix: str) -> list[str]:
    """Workspaces with a run each (its chain purged: nothing executes it)."""
    tenants = bench.tenants(WORKSPACES, prefix)
    bench.start_runs(tenants)
    purge_queue(bench.queue)
    return tenants


@contextmanager
def _now(bench: Bench, label: str = "now", **settings: str) -> Iterator[Server]:
    paths = [f"{V1}/{t}/status" for t in _workspaces(bench, f"Status {label}")]
    env = {**os.environ, **settings}
    with _served(label, "wsgi:app", env, bench.token, paths) as server:
        yield server


@contextmanager
def _floor(bench: Bench) -> Iterator[Server]:
    paths = [f"/floor/{t}" for t in _workspaces(bench, "Status floor")]
    with _served("floor", "bench.floor:app", dict(os.environ), "unused", paths,
                 ready=paths[0]) as server:  # fmt: skip
        yield server


@contextmanager
def shipped() -> Iterator[Server]:
    tree = _baseline_tree()
    python = private_venv(tree / ".venv", "-r", str(tree / "requirements.txt"))
    own = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with scratch_database() as url:
        argv = [str(python), "-c", _BASELINE_SETUP, url, str(WORKSPACES)]
        setup = subprocess.run(argv, cwd=tree, capture_output=True, text=True, env=own, check=False)
        if setup.returncode:
            raise RuntimeError(f"the baseline's setup failed:\n{setup.stderr[-3000:]}")
        state = json.loads(setup.stdout.strip().splitlines()[-1])
        env = {**own, **state["env"]}
        paths = [f"{V1}/{t}/status" for t in state["tenants"]]
        with _served("shipped", "wsgi:app", env, state["token"], paths, cwd=tree,
                     bin_dir=python.parent) as server:  # fmt: skip
            yield server


def _baseline_tree() -> Path:
    sha = subprocess.run(["git", "rev-parse", "--short", BASELINE_REF], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    tree = LOG_DIR / "baseline" / sha
    if not (tree / "wsgi.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "archive", sha], cwd=ROOT, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
        if archive.wait():
            raise RuntimeError(f"git archive {sha} failed")
    return tree
