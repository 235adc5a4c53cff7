"""What every local HTTP fake shares: a threaded server on 127.0.0.1, JSON bodies in and out."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HTTPFake:
    """A fake API in a background thread; a subclass answers each request in ``_serve``
    (``body``: the parsed JSON of a POST, None for a GET)."""

    port = 0
    _server: ThreadingHTTPServer | None = None

    def start(self, port: int = 0):
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def _serve(self, request: BaseHTTPRequestHandler, body: dict | None) -> None:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake._serve(self, None)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                fake._serve(self, json.loads(self.rfile.read(length) or b"{}"))

            def log_message(self, *args):
                pass

        return Handler


def send_json(request: BaseHTTPRequestHandler, status: int, payload: bytes,
              content_type: str = "application/json", headers: dict | None = None) -> None:
    """One response; a client that already gave up (a timeout test) is not an error here."""
    try:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
