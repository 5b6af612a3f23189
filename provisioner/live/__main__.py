"""`python -m provisioner.live`: the live process (the Procfile's `live`, `make live`)."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
from typing import Any

import uvloop

from provisioner.config import from_env
from provisioner.live.hub import Hub
from provisioner.live.server import Connection, Settings
from provisioner.observability.logging import configure

log = logging.getLogger("provisioner.live")


def _raise_open_files_limit() -> None:
    """Every stream is a socket: take the hard limit of open files."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(config: dict[str, Any]) -> None:
    if not str(config["REDIS_URL"]).startswith(("redis://", "rediss://")):
        raise SystemExit("the live process needs Redis: set REDIS_URL (or a Redis broker)")
    settings = Settings.from_config(config)
    hub = Hub(config["REDIS_URL"], config["SQLALCHEMY_DATABASE_URI"],
              config["LIVE_REDIS_BACKOFF_MAX"])  # fmt: skip
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Connection(hub, settings), config["LIVE_HOST"], config["LIVE_PORT"],
        backlog=8192,
    )  # fmt: skip
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    subscription = loop.create_task(hub.run())
    keepalive = loop.create_task(_keepalive(hub, settings.keepalive_seconds))
    log.info("live: serving on %s:%s", config["LIVE_HOST"], config["LIVE_PORT"])
    print(f"live process listening on {config['LIVE_HOST']}:{config['LIVE_PORT']}", flush=True)
    await stop.wait()
    server.close()
    subscription.cancel()
    keepalive.cancel()


async def _keepalive(hub: Hub, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        hub.keepalive()


def main() -> None:
    config = from_env()
    configure(config["LOG_LEVEL"])
    _raise_open_files_limit()
    uvloop.run(serve(config))


if __name__ == "__main__":
    main()
