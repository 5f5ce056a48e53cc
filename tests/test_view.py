"""`rs-effnet view`: the page's files, the server's safety, and what a real browser draws."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import mercantile
import numpy as np
import pytest
from browser import SKIP_REASON, chromium, close, screenshot
from click.testing import CliRunner
from PIL import Image

from robosat_effnet.cli import main
from robosat_effnet.io import write_image, write_mask
from robosat_effnet.view import serve_in_thread, write_page

Z, X0, Y0 = 18, 152600, 129350  # a 2 x 2 block of z18 tiles
GREY = 128
MASK_RGB = (249, 136, 108)  # robosat's "orange", class 1
TP, FN, FP = (0, 255, 0), (0, 255, 255), (255, 0, 0)  # the page's outline colours


def _square(west: float, south: float, east: float, north: float) -> dict:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _collection(*geometries: dict) -> dict:
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "geometry": g, "properties": {"class": "building"}}
                         for g in geometries]}


@pytest.fixture
def scene(tmp_path: Path) -> dict:
    """Grey imagery; the left column of tiles holds a mask building, the right column outlines."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    for dx in (0, 1):
        for dy in (0, 1):
            tile = mercantile.Tile(X0 + dx, Y0 + dy, Z)
            write_image(images / str(Z) / str(tile.x) / f"{tile.y}.png", np.full((256, 256, 3), GREY, np.uint8))
            label = np.zeros((256, 256), np.uint8)
            if dx == 0:
                label[64:192, 64:192] = 1
            write_mask(masks / str(Z) / str(tile.x) / f"{tile.y}.png", label, ["denim", "orange"])
    # Outlines inside the right column: one found building (pred == truth), one missed, one invented.
    w, s, e, n = mercantile.bounds(mercantile.Tile(X0 + 1, Y0, Z))
    dx, dy = (e - w) / 4, (n - s) / 4
    found = _square(w + dx, s + dy, e - dx, n - dy)
    w2, s2, e2, n2 = mercantile.bounds(mercantile.Tile(X0 + 1, Y0 + 1, Z))
    missed = _square(w2 + dx, s2 + 2 * dy, w2 + 2 * dx, n2 - dy)
    invented = _square(e2 - 2 * dx, s2 + dy, e2 - dx, s2 + 2 * dy)
    pred, truth = tmp_path / "pred.geojson", tmp_path / "truth.geojson"
    pred.write_text(json.dumps(_collection(found, invented)))
    truth.write_text(json.dumps(_collection(found, missed)))
    return {"images": images, "masks": masks, "pred": pred, "truth": truth, "root": tmp_path}


def _data(page: Path) -> dict:
    text = (page / "data.js").read_text()
    return json.loads(text[text.index("=") + 1:].rstrip().rstrip(";"))


def test_page_holds_everything_it_needs(scene):
    page = write_page(scene["root"] / "page", scene["images"], masks=scene["masks"], outlines=scene["pred"],
                      truth=scene["truth"], classes=["background", "building"], progress=False)
    folder = page.folder
    for name in ("index.html", "leaflet.js", "leaflet.css", "LICENSE-leaflet.txt", "view.js", "data.js"):
        assert (folder / name).is_file()
    html = (folder / "index.html").read_text() + (folder / "view.js").read_text()
    assert "http://" not in html and "https://" not in html  # no CDN: nothing from outside the folder
    data = _data(folder)
    w, s, e, n = page.bounds
    first, last = mercantile.bounds(mercantile.Tile(X0, Y0, Z)), mercantile.bounds(mercantile.Tile(X0 + 1, Y0 + 1, Z))
    assert (w, n, e, s) == pytest.approx((first.west, first.north, last.east, last.south), abs=1e-12)
    assert data["images"]["minZoom"] == data["images"]["maxZoom"] == Z
    assert data["masks"]["classes"] == [{"name": "building", "color": "#f9886c"}]
    assert [f["properties"]["match"] for f in data["outlines"]["features"]] == ["tp", "fp"]
    assert [f["properties"]["match"] for f in data["truth"]["features"]] == ["tp", "fn"]
    assert data["outlines"]["features"][0]["properties"]["iou"] == pytest.approx(1.0)
    # The overlay keeps the building's colour and makes the background transparent.
    overlay = np.asarray(Image.open(folder / "tiles" / "masks" / str(Z) / str(X0) / f"{Y0}.png"))
    assert overlay.shape == (256, 256, 4)
    assert tuple(overlay[128, 128]) == (*MASK_RGB, 255) and overlay[10, 10, 3] == 0
    # Imagery is linked, not rewritten: same bytes.
    tile = f"{Z}/{X0}/{Y0}.png"
    assert (folder / "tiles" / "images" / tile).read_bytes() == (scene["images"] / tile).read_bytes()


def test_a_failed_write_leaves_no_page_that_opens(scene, monkeypatch):
    import errno

    from robosat_effnet.errors import OutputError

    out = scene["root"] / "page"
    write_page(out, scene["images"], masks=scene["masks"], progress=False)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("robosat_effnet.view.page._write_overlays", full)  # the disk fills while writing the masks
    with pytest.raises(OutputError, match="the disk is full"):
        write_page(out, scene["images"], masks=scene["masks"], progress=False)
    assert not (out / "index.html").exists()  # the old page is not shown over half of the new one
    monkeypatch.undo()
    write_page(out, scene["images"], masks=scene["masks"], progress=False)  # the rerun completes it
    assert (out / "index.html").is_file() and (out / "data.js").is_file()


def test_geotiff_tiles_become_png(tmp_path):
    images = tmp_path / "tif"
    rng = np.random.default_rng(0)
    write_image(images / str(Z) / str(X0) / f"{Y0}.tif", rng.integers(0, 4000, (64, 64, 4)).astype(np.uint16))
    page = write_page(tmp_path / "page", images, progress=False)
    preview = np.asarray(Image.open(page.folder / "tiles" / "images" / str(Z) / str(X0) / f"{Y0}.png"))
    assert preview.shape == (64, 64, 3) and preview.dtype == np.uint8
    assert preview.min() == 0 and preview.max() == 255  # stretched between the 2nd and 98th percentiles
    assert _data(page.folder)["images"]["url"].endswith(".png")


def test_page_refuses_to_overwrite_foreign_or_input_folders(scene):
    runner = CliRunner()
    foreign = scene["root"] / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = runner.invoke(main, ["view", str(scene["images"]), "--out", str(foreign), "--no-serve"])
    assert result.exit_code == 1 and "did not write" in result.output
    assert (foreign / "notes.txt").read_text() == "keep me"
    inside = scene["images"] / "page"
    result = runner.invoke(main, ["view", str(scene["images"]), "--out", str(inside), "--no-serve"])
    assert result.exit_code == 1 and "lies inside the input" in result.output and not inside.exists()
    # A page written before may be rewritten.
    for _ in range(2):
        result = runner.invoke(main, ["view", str(scene["images"]), "--out", str(scene["root"] / "p"), "--no-serve"])
        assert result.exit_code == 0, result.output


def test_bad_input_is_one_line(scene, tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(main, ["view", str(empty), "--out", str(tmp_path / "a"), "--no-serve"])
    assert result.exit_code == 1 and "no image tiles" in result.output and "Traceback" not in result.output
    broken = tmp_path / "broken.geojson"
    broken.write_text("{not json")
    result = runner.invoke(main, ["view", str(scene["images"]), "--outlines", str(broken), "--out",
                                  str(tmp_path / "b"), "--no-serve"])
    assert result.exit_code == 1 and str(broken) in result.output and len(result.output.strip().splitlines()) == 1
    result = runner.invoke(main, ["view", str(scene["images"]), "--no-serve"])
    assert result.exit_code == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(main, ["view", str(scene["images"]), "--port", str(port)])
    assert result.exit_code == 1 and f"port {port}" in result.output and "in use" in result.output


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, ""


def _raw(port: int, target: str) -> int:
    """Status of a request sent as is (urllib would normalise `..` away)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        return int(conn.recv(64).split()[1])


def test_server_serves_only_the_page(scene, tmp_path):
    page = write_page(tmp_path / "page", scene["images"], masks=scene["masks"], progress=False).folder
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    os.symlink(secret, page / "link.png")
    os.symlink(tmp_path, page / "up")
    server = serve_in_thread(page)
    try:
        port = server.server_address[1]
        assert server.server_address[0] == "127.0.0.1"
        assert _get(server.url) == (200, "text/html; charset=utf-8")
        assert _get(server.url + "leaflet.js") == (200, "text/javascript; charset=utf-8")
        assert _get(server.url + "leaflet.css") == (200, "text/css; charset=utf-8")
        assert _get(server.url + f"tiles/masks/{Z}/{X0}/{Y0}.png") == (200, "image/png")
        for target in ["/../secret.png", "/%2e%2e/secret.png", "/tiles/%2E%2E/%2e%2e/../secret.png",
                       "/..%2fsecret.png", "//" + str(secret).lstrip("/"), str(secret), "/link.png",
                       "/up/secret.png", "/tiles/", "/missing.png", "/tiles/images/..\\..\\secret.png"]:
            assert _raw(port, target) == 404, target
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(chromium() is None, reason=SKIP_REASON)
def test_browser_draws_imagery_masks_and_outlines(scene, tmp_path):
    page = write_page(tmp_path / "page", scene["images"], masks=scene["masks"], outlines=scene["pred"],
                      truth=scene["truth"], progress=False).folder
    server = serve_in_thread(page)
    netlog = tmp_path / "net.json"
    try:
        pixels = screenshot(server.url, tmp_path, f"--log-net-log={netlog}")
    finally:
        server.shutdown()
        server.server_close()
    height, width = pixels.shape[:2]
    left, right = pixels[:, : width // 2], pixels[:, width // 2:]
    assert close(pixels, (GREY, GREY, GREY), 2).mean() > 0.2  # the imagery
    blended = tuple(round(0.5 * c + 0.5 * GREY) for c in MASK_RGB)  # the overlay at 50% over grey
    assert close(left, blended, 6).sum() > 1000 and close(right, blended, 6).sum() == 0
    assert close(right, TP, 40).sum() > 100 and close(right, FN, 40).sum() > 50
    assert close(right, FP, 40).sum() > 50 and close(left, TP, 40).sum() == 0
    # Every request the page made went to its own server. The browser's own background requests (updates,
    # accounts) carry another network isolation key; they are blocked above and not the page's doing.
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    jobs = [e["params"] for e in log["events"] if e["type"] == start and isinstance(e.get("params"), dict)]
    page_urls = {job["url"] for job in jobs if "127.0.0.1" in job.get("network_isolation_key", "")
                 or job.get("initiator", "").startswith("http://127.0.0.1")}
    assert any("/tiles/images/" in u for u in page_urls) and any("/tiles/masks/" in u for u in page_urls)
    outside = {u for u in page_urls if not u.startswith(server.url)}
    assert not outside, outside


def test_serve_until_ctrl_c(scene):
    """The command serves on loopback, answers, and stops cleanly on SIGINT (Ctrl-C), removing its temp page."""
    import signal
    import sys

    process = subprocess.Popen([sys.executable, "-m", "robosat_effnet.cli.view", str(scene["images"]), "--masks",
                                str(scene["masks"]), "--port", "0", "--quiet"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        assert _get(url) == (200, "text/html; charset=utf-8")
        assert _get(url + f"tiles/masks/{Z}/{X0}/{Y0}.png") == (200, "image/png")
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
