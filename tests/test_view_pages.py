"""`view` pages as they are rewritten, fed symbolic links, and served on IPv6, checked with real HTTP requests.

A rewrite leaves exactly what the new run shows (an earlier run's extra mask tiles, or its tiles of another
format, are removed; files view did not write stay). Tiles that are symbolic links (a tile cache, `cp -rs`) are
served (they were hard links to the links, which the server refuses to follow out of the page: every tile a
404); a link named like a tile that leads to no image is refused. `--host ::1` serves (socketserver's IPv4
socket said "Address family not supported"); an address this machine does not have is one line of advice.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import mercantile
import numpy as np
import pytest
from click.testing import CliRunner

from robosat_effnet.cli import main
from robosat_effnet.errors import DatasetError
from robosat_effnet.io import write_image, write_mask
from robosat_effnet.tiles import tile_path
from robosat_effnet.view import serve_in_thread, write_page

TILES = [mercantile.Tile(152600 + dx, 129350 + dy, 18) for dy in (0, 1) for dx in (0, 1)]


def make_tiles(root: Path, tiles: list[mercantile.Tile], ext: str = "png", mask: bool = False) -> Path:
    for i, tile in enumerate(tiles):
        if mask:
            label = np.zeros((64, 64), np.uint8)
            label[: 8 * (i + 1)] = 1
            write_mask(tile_path(root, tile, "png"), label, ["denim", "orange"])
        else:
            write_image(tile_path(root, tile, ext), np.full((64, 64, 3), 40 * (i + 1), np.uint8))
    return root


def page_tiles(page: Path, kind: str) -> set[str]:
    return {p.relative_to(page / "tiles" / kind).as_posix() for p in (page / "tiles" / kind).rglob("*")
            if p.is_file()}


def names(tiles: list[mercantile.Tile], ext: str) -> set[str]:
    return {f"{t.z}/{t.x}/{t.y}.{ext}" for t in tiles}


# (first run, second run): each {images: (tiles, ext), masks: tiles or None}
REWRITES = {
    "fewer masks": (dict(images=(TILES, "png"), masks=TILES), dict(images=(TILES, "png"), masks=TILES[:2])),
    "no masks": (dict(images=(TILES, "png"), masks=TILES), dict(images=(TILES, "png"), masks=None)),
    "fewer images": (dict(images=(TILES, "png"), masks=None), dict(images=(TILES[1:], "png"), masks=None)),
    "another format": (dict(images=(TILES, "png"), masks=TILES[:1]), dict(images=(TILES, "jpg"), masks=TILES[:1])),
    "other tiles": (dict(images=(TILES[:2], "png"), masks=TILES[:2]), dict(images=(TILES[2:], "webp"),
                                                                            masks=TILES[3:])),
}


@pytest.mark.parametrize("rewrite", list(REWRITES))
def test_a_rewritten_page_holds_exactly_what_the_new_run_shows(tmp_path, rewrite):
    page = tmp_path / "page"
    for n, run in enumerate(REWRITES[rewrite]):
        (tiles, ext), masks = run["images"], run["masks"]
        images = make_tiles(tmp_path / f"images{n}", tiles, ext)
        mask_folder = make_tiles(tmp_path / f"masks{n}", masks, mask=True) if masks else None
        args = ["view", images, "--out", page, "--no-serve", "-q"] + (["--masks", mask_folder] if masks else [])
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        if n == 0:  # somebody's notes in the page: view did not write them, so they stay
            (page / "tiles" / "images" / "notes.txt").write_text("mine")
    assert page_tiles(page, "images") == names(tiles, ext) | {"notes.txt"}
    assert page_tiles(page, "masks") == (names(masks, "png") if masks else set())
    assert (page / "tiles" / "images" / "notes.txt").read_text() == "mine"
    data = json.loads((page / "data.js").read_text().split("=", 1)[1].rstrip().rstrip(";"))
    assert data["images"]["url"].endswith(f".{ext}") and (data["masks"] is None) == (masks is None)
    empty = [p for p in (page / "tiles").rglob("*") if p.is_dir() and not any(p.iterdir())]
    assert empty == []


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def link_tree(source: Path, target: Path, kind: str) -> None:
    """`cp -rs` (absolute links to every file), relative links to every file, or one link to the zoom folder."""
    if kind == "linked folder":
        target.mkdir(parents=True)
        (target / "18").symlink_to((source / "18").resolve(), target_is_directory=True)
        return
    for path in source.rglob("*.png"):
        link = target / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path.resolve() if kind == "absolute links" else os.path.relpath(path, link.parent))


@pytest.mark.parametrize("kind", ["absolute links", "relative links", "linked folder"])
def test_tiles_that_are_symbolic_links_are_served(tmp_path, kind):
    images = make_tiles(tmp_path / "cache", TILES)
    masks = make_tiles(tmp_path / "mask-cache", TILES, mask=True)
    link_tree(images, tmp_path / "images", kind)
    link_tree(masks, tmp_path / "masks", kind)
    page = write_page(tmp_path / "page", tmp_path / "images", masks=tmp_path / "masks", progress=False)
    assert page.image_tiles == page.mask_tiles == 4
    server = serve_in_thread(page.folder)
    try:
        for tile in TILES:
            status, body = get(f"{server.url}tiles/images/{tile.z}/{tile.x}/{tile.y}.png")
            assert status == 200 and body == tile_path(images, tile, "png").read_bytes()
            status, body = get(f"{server.url}tiles/masks/{tile.z}/{tile.x}/{tile.y}.png")
            assert status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        server.shutdown()
        server.server_close()
    assert not any(p.is_symlink() for p in page.folder.rglob("*"))  # nothing in the page leads out of it


@pytest.mark.parametrize("target", ["secret.txt", "secret.png", "folder"])
def test_a_tile_link_to_something_that_is_no_image_is_refused(tmp_path, target):
    images = make_tiles(tmp_path / "images", TILES[:1])
    secret = tmp_path / target
    if target == "folder":
        secret.mkdir()
    else:
        secret.write_text("password")  # not an image, whatever its name says
    tile_path(images, TILES[1], "png").parent.mkdir(parents=True, exist_ok=True)
    tile_path(images, TILES[1], "png").symlink_to(secret)
    with pytest.raises(DatasetError, match="links to .*which is no PNG, JPEG or WebP image"):
        write_page(tmp_path / "page", images, progress=False)
    assert not any(p.is_file() and p.read_bytes() == b"password" for p in (tmp_path / "page").rglob("*"))


def ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["::1", "[::1]", "127.0.0.1", "localhost"])
def test_the_page_is_served_on_ipv4_and_ipv6_hosts(tmp_path, host):
    if ":" in host and not ipv6():
        pytest.skip("this machine has no IPv6 loopback")
    page = write_page(tmp_path / "page", make_tiles(tmp_path / "images", TILES), progress=False)
    server = serve_in_thread(page.folder, host)
    try:
        assert server.url.startswith("http://[::1]:" if ":" in host else "http://")
        status, body = get(server.url + "index.html")
        assert status == 200 and b"<html" in body.lower()
        tile = TILES[0]
        assert get(f"{server.url}tiles/images/{tile.z}/{tile.x}/{tile.y}.png")[0] == 200
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("host", ["2001:db8::1", "192.0.2.1"])  # documentation addresses: no machine has them
def test_an_address_this_machine_lacks_is_one_line_of_advice(tmp_path, host):
    images = make_tiles(tmp_path / "images", TILES)
    result = CliRunner().invoke(main, ["view", str(images), "--host", host, "--port", "0", "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.count("\n") <= 2  # the warning about serving beyond loopback, then the error
    assert f"cannot serve on {host}" in result.output and "give --host an address of this machine" in result.output
