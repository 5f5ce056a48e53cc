"""The view server when clients hang up: browsers cancel tile requests on every pan and zoom.

A client that goes away is no error of the server: nothing on stderr (no traceback per cancelled tile), and the
next request is served. Every write path is tried: the body of a large file, the headers, a 404, a HEAD, and a
request that never finished arriving.
"""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from robosat_effnet.io import write_image
from robosat_effnet.view import serve_in_thread, write_page

Z, X, Y = 18, 152600, 129350
BIG = 32 * 2**20  # larger than the socket buffers of both ends together: the server is mid-write when reset


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST, as when a browser drops a cancelled request."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _hang_up(port: int, request: bytes, read: int = 0) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server blocks writing
    sock.connect(("127.0.0.1", port))
    if request:
        sock.sendall(request)
    if read:
        sock.recv(read)  # the response has started
        time.sleep(0.2)  # the server fills the buffers and waits
    _reset(sock)


HANG_UPS = {
    "during the body of a large file": (b"GET /big.png HTTP/1.1\r\nHost: x\r\n\r\n", 64),
    "before the headers": (b"GET /leaflet.js HTTP/1.1\r\nHost: x\r\n\r\n", 0),
    "during a 404": (b"GET /missing.png HTTP/1.1\r\nHost: x\r\n\r\n", 0),
    "during a HEAD": (b"HEAD /big.png HTTP/1.1\r\nHost: x\r\n\r\n", 0),
    "in the middle of the request": (b"GET /big.png HT", 0),
    "before asking anything": (b"", 0),
}


@pytest.fixture
def page(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    write_image(images / str(Z) / str(X) / f"{Y}.png", np.full((64, 64, 3), 90, np.uint8))
    folder = write_page(tmp_path / "page", images, progress=False).folder
    (folder / "big.png").write_bytes(np.random.default_rng(0).bytes(BIG))
    return folder


def test_clients_hanging_up_are_quiet_and_the_server_keeps_serving(page, tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "robosat_effnet.cli.view", str(tmp_path / "images"), "--out",
                                str(page), "--serve", "--port", "0", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()  # wrote the map page ...
        url = process.stdout.readline().split(" on ", 1)[1].split()[0]
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        for name, (request, read) in HANG_UPS.items():
            for _ in range(3):
                _hang_up(port, request, read)
            with urllib.request.urlopen(url + "leaflet.js", timeout=30) as response:  # still serving
                assert response.status == 200 and len(response.read()) > 100_000, name
        with urllib.request.urlopen(url + "big.png", timeout=60) as response:
            assert len(response.read()) == BIG
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and "stopped" in out
    assert err == "", err  # not a traceback, not a line, per hang-up


def test_a_file_gone_between_lookup_and_read_is_a_404(page, monkeypatch, capfd):
    """The page rewritten by another `view --out` run while served: a file found may be gone when read."""
    gone = page / "gone.png"
    monkeypatch.setattr("robosat_effnet.view.server.resolve_request", lambda root, target: gone)
    server = serve_in_thread(page)
    try:
        for _ in range(2):
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(server.url + "gone.png", timeout=10)
            assert error.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
    assert capfd.readouterr().err == ""
