"""A static file server for a web folder (`fmnist serve`, and the browser check of `fmnist export
--target web`): the MIME types a WebAssembly page needs, no directory listings, quiet logs."""

from __future__ import annotations

import functools
import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Browsers refuse an ES module served as anything but JavaScript, and stream-compile
# WebAssembly only when it is served as application/wasm.
MIME_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
              ".tflite": "application/octet-stream", ".html": "text/html", ".json": "application/json"}  # fmt: skip


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def list_directory(self, path):  # a folder without index.html is not browsed
        self.send_error(404, "Not found")

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")  # a re-export is seen at the next reload
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 - the signature http.server calls
        pass


def make_server(folder: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server for `folder` bound to host:port (port 0: any free one); OSError if it cannot bind."""
    handler = functools.partial(_Handler, directory=str(folder))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def url_of(server: ThreadingHTTPServer, host: str | None = None) -> str:
    bound_host, port = server.server_address[:2]
    shown = host or bound_host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 in a background thread; yields its URL."""
    server = make_server(folder)
    thread = threading.Thread(target=server.serve_forever, name="fmnist-static", daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
