"""Headless Chromium for the map page's tests: a screenshot or the DOM of a served page, offline.

    if chromium() is None: pytest.skip(...)
    pixels = screenshot(server.url, tmp_path)             # H x W x 3 uint8 of what a browser draws
    dom = dump_dom(server.url + "probe.html", tmp_path)   # the DOM after the page's scripts ran
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SKIP_REASON = ("no Chromium: `make test` installs the distribution's chromium package when it can (apt-get as "
               "root); install it to run the browser tests")
WINDOW = (800, 600)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def command(folder: Path, *extra: str) -> list[str]:
    """Chromium headless with a fresh profile in `folder`, nothing leaving the machine, 10 s of virtual time."""
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--hide-scrollbars",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
            f"--user-data-dir={tempfile.mkdtemp(prefix='profile-', dir=folder)}",
            # No name resolves but loopback, and a dead proxy for the rest (loopback itself bypasses proxies).
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
            f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=10000", *extra]


def screenshot(url: str, folder: Path, *extra: str) -> np.ndarray:
    """What the browser draws of `url` once its tiles have loaded, as an H x W x 3 uint8 array."""
    shot = Path(tempfile.mkdtemp(prefix="shot-", dir=folder)) / "shot.png"
    subprocess.run(command(folder, *extra, f"--screenshot={shot}", url), check=True, capture_output=True,
                   timeout=120)
    return np.asarray(Image.open(shot).convert("RGB"))


def dump_dom(url: str, folder: Path) -> str:
    """The page's DOM (HTML) after its scripts ran for the virtual time budget."""
    return subprocess.run(command(folder, "--dump-dom", url), check=True, capture_output=True, text=True,
                          timeout=120).stdout


def close(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 10) -> np.ndarray:
    """Which pixels are within `tolerance` of `rgb` in every channel."""
    return (np.abs(pixels[..., :3].astype(int) - np.array(rgb)) <= tolerance).all(axis=-1)
