"""`rs-effnet download` against a real HTTP server on 127.0.0.1 (tests/tileserver.py), not mocks: retries,
Retry-After, timeouts, bodies that are no tile, no imagery, resuming, and a kill -9 in the middle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import mercantile
import pytest
from click.testing import CliRunner
from PIL import Image
from tileserver import FILE, Reply, TileServer, png_tile, tile_folder

from robosat_effnet.cli import main
from robosat_effnet.outputs import is_temp
from robosat_effnet.tiles import read_tiles_csv, write_tiles_csv

ROOT = Path(__file__).resolve().parents[1]
TILES = [mercantile.Tile(x, y, 18) for x in (154802, 154803) for y in (130817, 130818, 130819)]
FAST = ["--quiet", "--retries", "2", "--timeout", "5"]


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "served"
    tile_folder(root, TILES)
    tiles_csv = tmp_path / "tiles.csv"
    write_tiles_csv(tiles_csv, TILES)
    with TileServer(root) as server:
        server.tiles_csv = tiles_csv
        yield server


def download(server, out, *extra, template="/{z}/{x}/{y}.png"):
    return CliRunner().invoke(main, ["download", server.url + template, str(server.tiles_csv), str(out), *FAST,
                                     *extra])


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_tile_is_fetched_byte_for_byte_with_our_user_agent(served, tmp_path):
    result = download(served, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "fetched 6, already there 0, no imagery 0, failed 0" in result.output
    for tile in TILES:
        assert (tmp_path / "out" / "18" / str(tile.x) / f"{tile.y}.png").read_bytes() == png_tile(tile.x, tile.y)
    agents = {headers.get("User-Agent") for _, _, headers in served.requests}
    assert len(agents) == 1 and agents.pop().startswith("rs-effnet/")


@pytest.mark.parametrize("template, served_path", [
    ("/tms/{z}/{x}/{-y}.png", lambda t: f"tms/{t.z}/{t.x}/{2**t.z - 1 - t.y}.png"),
    ("/q/{quadkey}.png", lambda t: f"q/{mercantile.quadkey(t)}.png"),
    ("/xyz/{z}/{y}/{x}", lambda t: f"xyz/{t.z}/{t.y}/{t.x}"),
])
def test_url_templates_put_each_tile_in_its_place(served, tmp_path, template, served_path):
    for tile in TILES:
        path = served.root / served_path(tile)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_tile(tile.x, tile.y))
    result = download(served, tmp_path / "out", template=template)
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "out").keys() >= {f"18/{t.x}/{t.y}.png" for t in TILES}
    for tile in TILES:
        assert (tmp_path / "out" / "18" / str(tile.x) / f"{tile.y}.png").read_bytes() == png_tile(tile.x, tile.y)


def test_429_waits_at_least_retry_after(served, tmp_path):
    tile = TILES[0]
    path = f"/18/{tile.x}/{tile.y}.png"
    served.script(path, [Reply(429, b"slow down", {"Retry-After": "2"}), FILE])
    result = download(served, tmp_path / "out")
    assert result.exit_code == 0, result.output
    first, second = served.hits(path)
    assert second - first >= 2.0
    assert (tmp_path / "out" / "18" / str(tile.x) / f"{tile.y}.png").read_bytes() == png_tile(tile.x, tile.y)


def test_a_500_is_retried_until_the_tile_comes(served, tmp_path):
    tile = TILES[1]
    path = f"/18/{tile.x}/{tile.y}.png"
    served.script(path, [Reply(500, b"oops"), Reply(503, b"busy"), FILE])
    result = download(served, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert len(served.hits(path)) == 3
    assert "fetched 6," in result.output


def test_a_server_that_keeps_failing_is_a_listed_failure_and_exit_1(served, tmp_path):
    tile = TILES[2]
    served.script(f"/18/{tile.x}/{tile.y}.png", [Reply(500, b"oops")])
    result = download(served, tmp_path / "out")
    assert result.exit_code == 1
    assert "fetched 5, already there 0, no imagery 0, failed 1" in result.output
    assert "HTTP 500" in result.output and "after 3 tries" in result.output
    assert len(served.hits(f"/18/{tile.x}/{tile.y}.png")) == 3
    assert read_tiles_csv(tmp_path / "out" / "failed.csv") == [tile]
    assert "Traceback" not in result.output and result.output.count("\n") == 1
    # A rerun asks only for what is missing, and once it comes the failure list goes.
    served.script(f"/18/{tile.x}/{tile.y}.png", [FILE])
    before = len(served.requests)
    result = download(served, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "fetched 1, already there 5, no imagery 0, failed 0" in result.output
    assert [p for p, _, _ in served.requests[before:]] == [f"/18/{tile.x}/{tile.y}.png"]
    assert not (tmp_path / "out" / "failed.csv").exists()


def test_a_hanging_server_times_out(served, tmp_path):
    tile = TILES[3]
    served.script(f"/18/{tile.x}/{tile.y}.png", [Reply(200, png_tile(1, 1), delay=3.0)])
    started = time.monotonic()
    result = CliRunner().invoke(main, ["download", served.url + "/{z}/{x}/{y}.png", str(served.tiles_csv),
                                       str(tmp_path / "out"), "--quiet", "--timeout", "0.3", "--retries", "1"])
    assert result.exit_code == 1
    assert "no answer within --timeout 0.3 s after 2 tries" in result.output
    assert len(served.hits(f"/18/{tile.x}/{tile.y}.png")) == 2
    assert time.monotonic() - started < 3.0  # not waiting for the hang to end
    assert not (tmp_path / "out" / "18" / str(tile.x) / f"{tile.y}.png").exists()


def _png(size: int) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (size, size), (10, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


NOT_TILES = {
    "html error page": (b"<html><body>Rate limit exceeded</body></html>", {"Content-Type": "text/html"},
                        "not a complete image"),
    "truncated png": (_png(256)[:300], {"Content-Type": "image/png"}, "not a complete image"),
    "wrong size": (_png(128), {"Content-Type": "image/png"}, "a 128x128 px image, not 256x256"),
    "empty body": (b"", {"Content-Type": "image/png"}, "an empty body"),
    "json error": (b'{"error": "no such layer"}', {"Content-Type": "application/json"}, "not a complete image"),
}


@pytest.mark.parametrize("case", sorted(NOT_TILES))
def test_a_body_that_is_no_tile_is_a_failure_never_a_tile(served, tmp_path, case):
    body, headers, why = NOT_TILES[case]
    tile = TILES[4]
    served.script(f"/18/{tile.x}/{tile.y}.png", [Reply(200, body, headers)])
    result = download(served, tmp_path / "out")
    assert result.exit_code == 1
    assert why in result.output and "failed 1" in result.output
    assert not (tmp_path / "out" / "18" / str(tile.x) / f"{tile.y}.png").exists()
    assert read_tiles_csv(tmp_path / "out" / "failed.csv") == [tile]
    assert len(files(tmp_path / "out")) == 5 + 2  # the other tiles, the record and failed.csv: no temp file


@pytest.mark.parametrize("status", [404, 204])
def test_no_imagery_is_recorded_not_retried_nor_asked_again(served, tmp_path, status):
    tile = TILES[5]
    path = f"/18/{tile.x}/{tile.y}.png"
    served.script(path, [Reply(status, b"" if status == 204 else b"no tile")])
    result = download(served, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "fetched 5, already there 0, no imagery 1, failed 0" in result.output
    assert read_tiles_csv(tmp_path / "out" / "missing.csv") == [tile]
    assert len(served.hits(path)) == 1
    result = download(served, tmp_path / "out")
    assert "fetched 0, already there 5, no imagery 1, failed 0" in result.output
    assert len(served.hits(path)) == 1


def test_rate_limits_requests_across_workers(served, tmp_path):
    started = time.monotonic()
    result = download(served, tmp_path / "out", "--rate", "10", "--workers", "4")
    assert result.exit_code == 0, result.output
    times = sorted(t for _, t, _ in served.requests)
    assert len(times) == 6 and times[-1] - times[0] >= 0.45  # 6 requests at 10/s span at least 0.5 s
    assert time.monotonic() - started >= 0.45


@pytest.mark.parametrize("template", [
    "tiles.example.org/{z}/{x}/{y}.png", "ftp://host/{z}/{x}/{y}.png", "https://host/{z}/{x}.png",
    "https://host/{s}/{z}/{x}/{y}.png", "https://host/tile.png", "https://{z}/{x}/{y}",
])
def test_a_bad_template_is_a_usage_error(tmp_path, template):
    tiles_csv = tmp_path / "tiles.csv"
    write_tiles_csv(tiles_csv, TILES)
    result = CliRunner().invoke(main, ["download", template, str(tiles_csv), str(tmp_path / "out")])
    assert result.exit_code == 2 and "URL" in result.output
    assert not (tmp_path / "out").exists()


def test_another_services_folder_is_refused(served, tmp_path):
    assert download(served, tmp_path / "out").exit_code == 0
    result = download(served, tmp_path / "out", template="/other/{z}/{x}/{y}.png")
    assert result.exit_code == 1 and "--overwrite" in result.output and "another source" in result.output


def test_kill_9_mid_download_then_rerun_equals_an_uninterrupted_run(tmp_path):
    tiles = [mercantile.Tile(x, y, 18) for x in range(154800, 154806) for y in range(130815, 130821)]
    root = tmp_path / "served"
    tile_folder(root, tiles)
    tiles_csv = tmp_path / "tiles.csv"
    write_tiles_csv(tiles_csv, tiles)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    with TileServer(root) as server:
        missing = tiles[7]
        server.script(f"/18/{missing.x}/{missing.y}.png", [Reply(404, b"none")])
        command = [sys.executable, "-m", "robosat_effnet.cli", "download", server.url + "/{z}/{x}/{y}.png",
                   str(tiles_csv)]
        done = subprocess.run([*command, str(tmp_path / "whole"), "--quiet"], env=env, capture_output=True)
        assert done.returncode == 0, done.stderr
        server.delay = 0.15  # slow, so that the kill lands mid-download
        process = subprocess.Popen([*command, str(tmp_path / "killed"), "--quiet", "--workers", "2"], env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((tmp_path / "killed").rglob("*.png"))) < 5:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        written = [p for p in (tmp_path / "killed").rglob("*.png") if not is_temp(p.name)]
        assert 5 <= len(written) < len(tiles) - 1  # killed in the middle
        for path in written:  # nothing half-written: every tile there decodes completely
            with Image.open(path) as image:
                image.load()
        server.delay = 0.0
        rerun = subprocess.run([*command, str(tmp_path / "killed"), "--quiet"], env=env, capture_output=True,
                               text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"already there {len(written)}" in rerun.stdout
    assert files(tmp_path / "killed") == files(tmp_path / "whole")
    assert not [p for p in (tmp_path / "killed").rglob("*") if is_temp(p.name)]


@pytest.mark.parametrize("command", ["download", "cover"])
def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(served, tmp_path, monkeypatch, command):
    import contextlib
    import errno

    @contextlib.contextmanager
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")
        yield

    monkeypatch.setattr("robosat_effnet.io.atomic_path", full)
    monkeypatch.setattr("robosat_effnet.prepare.download.atomic_path", full)
    if command == "download":
        result = download(served, tmp_path / "out")
    else:
        result = CliRunner().invoke(main, ["cover", str(tmp_path / "out" / "tiles.csv"), "--zoom", "12",
                                           "--bbox", "1,1,1.2,1.2"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.startswith("Error: cannot write") and "the disk is full" in result.output
    assert result.output.count("\n") == 1
    assert not [p for p in (tmp_path / "out").rglob("*") if p.suffix in (".png", ".csv")]
