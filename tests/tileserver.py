"""A real HTTP server on 127.0.0.1 for the download and COG tests: serves a folder (with Range requests, as a
COG needs), and per-path scripted answers (429 with Retry-After, 500 then 200, a hang, an HTML page...).

    with TileServer(root) as server:
        server.script("/18/1/2.png", [Reply(429, headers={"Retry-After": "2"}), FILE])
        url = server.url + "/{z}/{x}/{y}.png"
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # s before answering (a hang, when longer than the client's timeout)


FILE = Reply(status=-1)  # answer from the served folder


def png_tile(x: int, y: int, size: int = 256) -> bytes:
    """A deterministic PNG whose pixels depend on the tile."""
    rng = np.random.default_rng(x * 100_003 + y)
    image = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    buffer = BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class TileServer:
    def __init__(self, root: Path, delay: float = 0.0):
        self.root, self.delay = Path(root), delay
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, float, dict]] = []  # (path, time, headers)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self.answer(head=True)

            def do_GET(self):
                self.answer(head=False)

            def answer(self, head: bool):
                path = self.path.split("?")[0]
                with server.lock:
                    server.requests.append((path, time.monotonic(), dict(self.headers)))
                    script = server.scripts.get(path)
                    reply = (script.pop(0) if len(script) > 1 else script[0]) if script else FILE
                time.sleep(reply.delay or server.delay)
                if reply.status != -1:
                    return self.send(reply.status, reply.body, reply.headers, head)
                target = (server.root / path.lstrip("/")).resolve()
                if server.root.resolve() not in target.parents or not target.is_file():
                    return self.send(404, b"not found", {"Content-Type": "text/plain"}, head)
                data = target.read_bytes()
                match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                kind = {".png": "image/png", ".tif": "image/tiff"}.get(target.suffix, "application/octet-stream")
                if match:
                    start = int(match.group(1))
                    end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
                    headers = {"Content-Type": kind, "Content-Range": f"bytes {start}-{end}/{len(data)}",
                               "Accept-Ranges": "bytes"}
                    return self.send(206, data[start:end + 1], headers, head)
                return self.send(200, data, {"Content-Type": kind, "Accept-Ranges": "bytes"}, head)

            def send(self, status, body, headers, head):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if status not in (204, 304):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head and status not in (204, 304):
                    try:
                        self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def script(self, path: str, replies: list[Reply]) -> None:
        """Answer `path` with `replies` in turn; the last one repeats."""
        self.scripts[path] = list(replies)

    def hits(self, path: str) -> list[float]:
        return [t for p, t, _ in self.requests if p == path]

    def __enter__(self) -> TileServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def tile_folder(root: Path, tiles, size: int = 256) -> None:
    """Write the served `root/z/x/y.png` of each tile."""
    for tile in tiles:
        path = root / str(tile.z) / str(tile.x) / f"{tile.y}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_tile(tile.x, tile.y, size))
