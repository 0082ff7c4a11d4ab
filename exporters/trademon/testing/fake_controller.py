"""A STAND-IN for the gateway controller (ibg-controller), for tests and the demo: an HTTP
server on loopback answering ``/health`` and ``/ready`` with the status each is set to (200 or
503), as the real controller does for a gateway that is alive / logged in. It is not
ibg-controller and runs no gateway; only the two endpoints the exporter polls are stood in for.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeController:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.status = {"health": 200, "ready": 200}
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                check = self.path.strip("/")
                owner.requests.append(check)
                code = owner.status.get(check, 404)
                body = b'{"status":"ok"}' if code == 200 else b'{"status":"not ok"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-controller", daemon=True)

    def start(self) -> FakeController:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def set(self, *, health: int | None = None, ready: int | None = None) -> None:
        if health is not None:
            self.status["health"] = health
        if ready is not None:
            self.status["ready"] = ready

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
