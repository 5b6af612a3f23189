"""A small asyncio HTTP/1.1 keep-alive load generator, closed loop and open loop.

Closed loop: `connections` clients each send a request as soon as the previous answer is
in; the completion rate at saturation is the server's throughput.
Open loop: requests are scheduled at a constant rate whatever the server does, and each
latency is measured from its *scheduled* send time, so a slow server (or a client waiting
for a free connection) shows up in the percentiles instead of silently lowering the rate.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.common import pct

# Builds the raw bytes of request number i (None: nothing left to send).
RequestFactory = Callable[[int], bytes | None]


def http_request(
    method: str, path: str, host: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Result:
    """Latencies (ms) and status codes of one load run."""

    mode: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    offered_rate: float | None = None
    answered_seconds: float | None = None  # open loop: first scheduled → last answer

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return pct(self.latencies_ms, q)

    def summary(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "requests": self.count,
            "seconds": round(self.seconds, 2),
            "req_per_s": round(self.rate, 1),
            "p50_ms": round(self.p(50), 2),
            "p95_ms": round(self.p(95), 2),
            "p99_ms": round(self.p(99), 2),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 2),
            "statuses": dict(self.statuses),
            "errors": self.errors,
        } | ({"achieved_req_per_s": round(self.count / self.answered_seconds, 1)}
             if self.answered_seconds else {})  # fmt: skip


class Connection:
    """One keep-alive HTTP/1.1 connection; answers must carry a Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> int:
        """Send one request and read its whole answer; the status code."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(
    host: str,
    port: int,
    make: RequestFactory,
    *,
    connections: int,
    seconds: float,
    warmup: float = 1.0,
) -> Result:
    """`connections` clients back to back for `seconds` (after `warmup` s not counted)."""
    result = Result(f"closed loop, {connections} connections", seconds)
    counter = iter(range(10**12))
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + seconds
    ended = [stop]

    async def client() -> None:
        conn = await Connection.open(host, port)
        try:
            while (now := time.perf_counter()) < stop:
                raw = make(next(counter))
                if raw is None:
                    ended[0] = min(ended[0], now)
                    return
                try:
                    status = await conn.send(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    result.errors += 1
                    conn.close()
                    conn = await Connection.open(host, port)
                    continue
                done = time.perf_counter()
                if now >= measure_from:
                    result.latencies_ms.append((done - now) * 1000)
                    result.statuses[status] += 1
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    result.seconds = max(0.001, min(ended[0], time.perf_counter()) - measure_from)
    return result


async def open_loop(
    host: str,
    port: int,
    make: RequestFactory,
    *,
    rate: float,
    seconds: float,
    max_connections: int = 200,
    warmup: float = 1.0,
    timeout: float = 30.0,
) -> Result:
    """Requests sent at `rate` per second for `seconds`; latency from the scheduled time.
    An answer not complete within `timeout` s counts as an error."""
    result = Result(f"open loop, {rate:g} req/s offered", seconds, offered_rate=rate)
    idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
    opened = [0]
    slots = asyncio.Semaphore(max_connections)
    total = int(rate * (warmup + seconds))
    warm = int(rate * warmup)

    async def fresh() -> Connection:
        opened[0] += 1
        return await Connection.open(host, port)

    async def one(i: int, scheduled: float) -> None:
        raw = make(i)
        if raw is None:
            return
        async with slots:
            reused = not idle.empty()
            conn = idle.get_nowait() if reused else await fresh()
            try:
                try:
                    status = await asyncio.wait_for(conn.send(raw), timeout)
                except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                    if not reused or getattr(exc, "partial", b""):
                        raise
                    # A kept-alive connection the server closed while it was idle (gunicorn's
                    # keepalive): what any HTTP client does, once more on a new connection.
                    conn.close()
                    conn = await fresh()
                    status = await asyncio.wait_for(conn.send(raw), timeout)
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError):
                result.errors += 1
                conn.close()
                return
            idle.put_nowait(conn)
        if i >= warm:
            result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
            result.statuses[status] += 1

    tasks = []
    start = time.perf_counter()
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    result.answered_seconds = time.perf_counter() - (start + warmup)
    while not idle.empty():
        idle.get_nowait().close()
    result.mode += f" ({opened[0]} connections opened)"
    return result
