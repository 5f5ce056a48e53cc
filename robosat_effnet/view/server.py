"""A small HTTP server for the map page: one folder, read only, on the loopback interface.

It answers GET and HEAD for regular files inside the page folder and nothing else: no directory listings,
no `..`, no encoded escapes, no symlinks that lead out of the folder (each is a 404), with explicit content
types. It is safe to leave running on 127.0.0.1; another `host` is the caller's choice.

Browsers cancel tile requests on every pan and zoom: a client that hangs up (reset, broken pipe), whatever
the server was reading or writing then, ends its request quietly; other errors keep socketserver's report.
"""

from __future__ import annotations

import errno
import http.server
import ipaddress
import os
import shutil
import socket
import sys
import threading
import urllib.parse
from pathlib import Path

from robosat_effnet.errors import ConfigError

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".json": "application/json", ".geojson": "application/geo+json",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
    ".txt": "text/plain; charset=utf-8",
}
LOOPBACK = "127.0.0.1"


def resolve_request(root: Path, target: str) -> Path | None:
    """The file a request target names inside `root` (already resolved), or None when it must be a 404."""
    path = urllib.parse.urlsplit(target).path if not target.startswith("//") else target.split("?", 1)[0]
    path = urllib.parse.unquote(path)
    if "\x00" in path or "\\" in path:
        return None
    parts = [part for part in path.split("/") if part]
    if any(part in (".", "..") for part in parts):
        return None
    if not parts:
        parts = ["index.html"]
    candidate = root.joinpath(*parts)
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if real != root and root not in real.parents:  # a symlink out of the folder
        return None
    if not real.is_file() or real.suffix.lower() not in CONTENT_TYPES:
        return None
    return real


class PageHandler(http.server.BaseHTTPRequestHandler):
    """Serves the files of `self.server.root`."""

    server_version = "rs-effnet-view"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        path = resolve_request(self.server.root, self.path)
        try:
            file = None if path is None else path.open("rb")
        except OSError:  # gone since it was found (the page is being rewritten), or unreadable
            file = None
        if file is None:
            self.send_error(404, "not found")
            return
        with file:
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPES[path.suffix.lower()])
            self.send_header("Content-Length", str(os.fstat(file.fileno()).st_size))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if body:
                shutil.copyfileobj(file, self.wfile)

    def log_message(self, format: str, *args) -> None:  # quiet: the command prints its own line
        if self.server.verbose:
            super().log_message(format, *args)


class PageServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server of one page folder."""

    daemon_threads = True

    def __init__(self, root: str | os.PathLike, host: str = LOOPBACK, port: int = 0, verbose: bool = False):
        self.root = Path(root).resolve()
        self.verbose = verbose
        host = host.strip("[]")  # [::1], as written in URLs
        self.address_family = address_family(host)  # socketserver's is IPv4 only: ::1 failed with EAFNOSUPPORT
        try:
            super().__init__((host, port), PageHandler)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use; pick another with --port, or --port 0 "
                                  "for any free one") from None
            if e.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT):
                raise ConfigError(f"cannot serve on {host}: {e.strerror or e} (this machine has no such address"
                                  f"{' or no IPv6' if self.address_family == socket.AF_INET6 else ''}); give "
                                  f"--host an address of this machine, e.g. {LOOPBACK}") from None
            raise ConfigError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None

    def handle_error(self, request, client_address) -> None:
        """A client that hung up is no error (the request ends quietly); anything else is reported as usual."""
        if not isinstance(sys.exc_info()[1], ConnectionError):  # reset, broken pipe, aborted
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def address_family(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address (or a name with IPv6 addresses only), else AF_INET; ConfigError for a name
    that does not resolve."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        pass
    try:
        families = {info[0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError) as e:
        raise ConfigError(f"cannot serve on {host}: no such address ({e}); give --host an address of this "
                          f"machine, e.g. {LOOPBACK} or ::1") from None
    return socket.AF_INET if socket.AF_INET in families or not families else socket.AF_INET6


def serve_in_thread(root: str | os.PathLike, host: str = LOOPBACK, port: int = 0) -> PageServer:
    """Start a PageServer in a daemon thread (for notebooks and tests); stop it with `.shutdown()`."""
    server = PageServer(root, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
