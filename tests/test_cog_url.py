"""A cloud-optimised GeoTIFF by URL (`tile`, `predict`, `cover --geotiff`), served by a real HTTP server on
127.0.0.1 with range requests: the same output as from the local file, and one line for every way a server
fails (404, 500, not a TIFF, connection refused)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from click.testing import CliRunner
from rasterio.transform import from_origin
from tileserver import Reply, TileServer

from robosat_effnet.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def no_gdal_retries(monkeypatch):
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")  # a 500 fails at once, not after GDAL's own backoff


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A 200 x 150 px COG of 10 m in UTM 36N with a no-data corner, and a server that ranges over it."""
    root = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(0)
    data = np.kron(rng.integers(1, 256, (3, 16, 21)), np.ones((1, 10, 10)))[:, :150, :200].astype(np.uint8)
    rows, cols = np.mgrid[0:150, 0:200]
    data[:, rows + cols < 70] = 0
    profile = dict(driver="GTiff", width=200, height=150, count=3, dtype="uint8", crs="EPSG:32636", nodata=0,
                   transform=from_origin(452000.0, 38800.0, 10.0, 10.0))
    with rasterio.open(root / "plain.tif", "w", **profile) as dst:
        dst.write(data)
    rasterio.shutil.copy(root / "plain.tif", root / "scene.tif", driver="COG", blocksize=64)
    (root / "page.tif").write_bytes(b"<!doctype html><html><body>Sign in</body></html>")
    with TileServer(root) as server:
        server.script("/broken.tif", [Reply(500, b"internal error")])
        yield server


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def tile_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_tile_by_url_equals_tile_of_the_file(served, tmp_path):
    local = invoke("tile", served.root / "scene.tif", tmp_path / "local", "--zoom", 16, "-q")
    assert local.exit_code == 0, local.output
    before = len(served.requests)
    remote = invoke("tile", served.url + "/scene.tif", tmp_path / "remote", "--zoom", 16, "-q")
    assert remote.exit_code == 0, remote.output
    assert tile_bytes(tmp_path / "remote") == tile_bytes(tmp_path / "local") and tile_bytes(tmp_path / "local")
    ranges = [h.get("Range") for p, _, h in served.requests[before:] if p == "/scene.tif"]
    assert any(ranges)  # read by range requests
    # A rerun of the same URL continues its own folder; the record names the URL itself.
    assert invoke("tile", served.url + "/scene.tif", tmp_path / "remote", "--zoom", 16, "-q").exit_code == 0
    assert served.url + "/scene.tif" in (tmp_path / "remote" / ".rs-effnet.json").read_text()


def test_cover_by_url_equals_cover_of_the_file(served, tmp_path):
    assert invoke("cover", tmp_path / "a.csv", "--zoom", 16, "--geotiff", served.root / "scene.tif").exit_code == 0
    result = invoke("cover", tmp_path / "b.csv", "--zoom", 16, "--geotiff", served.url + "/scene.tif")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text() != ""


def test_predict_by_url_equals_predict_of_the_file(served, tmp_path, random_checkpoint):
    common = ["--checkpoint", random_checkpoint, "--zoom", 16, "--device", "cpu", "--quiet", "--workers", 0]
    local = invoke("predict", served.root / "scene.tif", tmp_path / "local", "--geotiff", tmp_path / "local.tif",
                   *common)
    assert local.exit_code == 0, local.output
    remote = invoke("predict", served.url + "/scene.tif", tmp_path / "remote", "--geotiff",
                    tmp_path / "remote.tif", *common)
    assert remote.exit_code == 0, remote.output
    assert tile_bytes(tmp_path / "remote") == tile_bytes(tmp_path / "local") and tile_bytes(tmp_path / "local")
    with rasterio.open(tmp_path / "local.tif") as a, rasterio.open(tmp_path / "remote.tif") as b:
        assert a.transform == b.transform and a.crs == b.crs
        assert np.array_equal(a.read(), b.read())


def test_predict_by_url_defaults_to_a_folder_here(served, tmp_path, random_checkpoint, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("predict", served.url + "/scene.tif", "--checkpoint", random_checkpoint, "--zoom", 16,
                    "--device", "cpu", "--quiet", "--workers", 0)
    assert result.exit_code == 0, result.output
    assert tile_bytes(tmp_path / "scene-masks")


FAILURES = {
    "404": ("/missing.tif", "HTTP 404"),
    "500": ("/broken.tif", "HTTP 500"),
    "not a tiff": ("/page.tif", "not a GeoTIFF"),
    "connection refused": (None, "no answer from the server"),
}
COMMANDS = {
    "tile": lambda url, tmp, ckpt: ["tile", url, tmp / "out", "--zoom", 16, "-q"],
    "predict": lambda url, tmp, ckpt: ["predict", url, tmp / "out", "--checkpoint", ckpt, "--zoom", 16,
                                       "--device", "cpu", "--quiet"],
    "predict --geotiff": lambda url, tmp, ckpt: ["predict", url, "--geotiff", tmp / "mask.tif", "--checkpoint",
                                                 ckpt, "--device", "cpu", "--quiet"],
    "cover": lambda url, tmp, ckpt: ["cover", tmp / "tiles.csv", "--zoom", 16, "--geotiff", url],
}


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_failing_server_is_one_line(served, tmp_path, random_checkpoint, command, failure):
    path, why = FAILURES[failure]
    url = served.url + path if path else f"http://127.0.0.1:{closed_port()}/scene.tif"
    result = invoke(*COMMANDS[command](url, tmp_path, random_checkpoint))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert why in result.output and url in result.output and "Traceback" not in result.output
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing written
