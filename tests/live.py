"""The live process (`python -m provisioner.live`) as a real subprocess, for the tests."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import free_port

ROOT = Path(__file__).resolve().parent.parent


class LiveProcess:
    def __init__(self, log: Path, **settings: str) -> None:
        self.port = free_port()
        self.log = log
        env = {**os.environ, "LIVE_HOST": "127.0.0.1", "LIVE_PORT": str(self.port), **settings}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "provisioner.live"], cwd=ROOT, env=env,
            stdout=log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while "listening" not in log.read_text():
            assert self.proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Stream:
    """One live stream read synchronously, event by event (comments and `retry:` skipped)."""

    def __init__(
        self,
        live: LiveProcess,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=timeout)
        self.conn.request("GET", path, headers=headers or {})
        self.response = self.conn.getresponse()
        self.last_id: str | None = None

    @property
    def status(self) -> int:
        return self.response.status

    def error(self) -> dict[str, Any]:
        """The JSON error a refused stream answered."""
        body: dict[str, Any] = json.loads(self.response.read())
        return body

    def next(self) -> tuple[str, Any]:
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline().decode()
            if not line:
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
            elif "event" in fields:
                self.last_id = fields.get("id")
                return fields["event"], json.loads(fields["data"])
            else:
                fields = {}

    def until(self, done: Callable[[str, Any], bool], timeout: float = 60) -> list[tuple[str, Any]]:
        """Events until `done(kind, data)` holds; fails after `timeout` seconds."""
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            seen.append(self.next())
            if done(*seen[-1]):
                return seen
        raise AssertionError(f"no such event within {timeout} s: {seen[-3:]}")

    def close(self) -> None:
        self.conn.close()
