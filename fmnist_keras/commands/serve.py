"""`fmnist serve`: the web page on this machine, for a browser here or a phone on the same network."""

from __future__ import annotations

import socket
from pathlib import Path

from fmnist_keras.errors import OutputError
from fmnist_keras.system.publish import os_error_text
from fmnist_keras.system.static_server import is_loopback, make_server, url_of


def serve_folder(folder: Path, host: str = "127.0.0.1", port: int = 8000, log=print) -> None:
    """Serve `folder` until Ctrl-C (KeyboardInterrupt reaches the caller, the socket closed)."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise OutputError(f"{folder} holds no index.html; make the page with "
                          "`fmnist export --quantize int8 --target web`, or name its folder")  # fmt: skip
    try:
        server = make_server(folder, host, port)
    except OSError as exc:
        reason = os_error_text(exc)
        raise OutputError(f"cannot listen on {host}:{port} ({reason}); pass another --port or --host") from None
    try:
        if not is_loopback(host):
            log(f"warning: listening on {host}: anyone who can reach this machine can open the page "
                "(it holds the model and the page, nothing else)")  # fmt: skip
        shown = socket.gethostbyname(socket.gethostname()) if host in ("0.0.0.0", "::") else None
        log(f"Serving {folder} at {url_of(server, shown)} (Ctrl-C stops)")
        server.serve_forever()
    finally:
        server.server_close()
