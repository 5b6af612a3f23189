"""Serve the simulator on a port from a thread (tests, the demo) or in the foreground."""

from __future__ import annotations

import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

POLL_INTERVAL = 0.05  # seconds; how soon stop() is noticed


class QuietHandler(WSGIRequestHandler):
    """No access log: the admin API's call log says what was asked."""

    def log_request(self, *args: object, **kwargs: object) -> None:
        pass


class SimulatorServer:
    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        # threaded=True: a ThreadedWSGIServer, whose request threads are daemons.
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=QuietHandler
        )
        self.host, self.port = host, self._server.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name="erpnext-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
