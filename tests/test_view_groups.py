"""The map page opens on data wherever the tiles lie: groups of neighbouring tiles, and what a browser shows."""

from __future__ import annotations

import json
from pathlib import Path

import mercantile
import numpy as np
import pytest
from browser import SKIP_REASON, chromium, close, dump_dom, screenshot

from robosat_effnet.io import write_image, write_mask
from robosat_effnet.view import serve_in_thread, write_page
from robosat_effnet.view.groups import GAP, group_tiles

PARKING = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "robosat-fixtures" / "parking"
BACKGROUND = (221, 221, 221)  # Leaflet's map background: no tile drawn there
LABEL_RED = (250, 0, 0)  # class 1 in the parking labels' palette
IMAGERY, MASK_RGB = (40, 110, 60), (249, 136, 108)  # generated scenes: green tiles, robosat's "orange" masks
PREDICTED, FOUND = (255, 0, 255), (0, 255, 0)  # outline colours: predicted (unscored), true positive


def _tiles(z: int, *xy: tuple[int, int]) -> list[mercantile.Tile]:
    return [mercantile.Tile(x, y, z) for x, y in xy]


def _union(tiles: list[mercantile.Tile]) -> tuple[float, float, float, float]:
    boxes = np.array([mercantile.bounds(t) for t in tiles])
    return boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()


def _centre_of_one_of(center: tuple[float, float], tiles: list[mercantile.Tile]) -> bool:
    for t in tiles:
        b = mercantile.bounds(t)
        middle = mercantile.lnglat(*(np.add(mercantile.xy(b.west, b.north), mercantile.xy(b.east, b.south)) / 2))
        if center == pytest.approx((middle.lng, middle.lat), abs=1e-9):
            return True
    return False


def test_the_parking_fixtures_are_two_places_largest_first():
    three = _tiles(18, (70761, 104120), (70762, 104119), (70763, 104119))  # neighbours (one diagonally)
    far = _tiles(18, (69623, 104946))
    groups = group_tiles(far + three)
    assert [g.tiles for g in groups] == [3, 1]
    assert groups[0].bounds == pytest.approx(_union(three), abs=1e-12)
    assert groups[1].bounds == pytest.approx(_union(far), abs=1e-12)
    assert _centre_of_one_of(groups[0].center, three) and _centre_of_one_of(groups[1].center, far)
    assert group_tiles([]) == []


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("zoom", [12, 18, 24, 30])
def test_random_places_come_back_as_they_were_made(seed, zoom):
    """Places of random shapes (random walks: steps of up to GAP + 1 tiles, so gaps inside) far apart, at any
    zoom: one group each, holding exactly its tiles, largest first, opening on one of its own tiles."""
    rng = np.random.default_rng(seed)
    places = []
    for k in range(int(rng.integers(1, 6))):
        x, y = 2**zoom // 2 + 60 * k, 2**zoom // 3 + int(rng.integers(0, 40))  # walks reach 24 tiles: 60 apart
        cells = {(x, y)}
        for _ in range(int(rng.integers(0, 12))):
            x, y = x + int(rng.integers(-GAP - 1, GAP + 2)), y + int(rng.integers(-GAP - 1, GAP + 2))
            cells.add((x, y))
        places.append(_tiles(zoom, *sorted(cells)))
    everything = [t for place in places for t in place]
    groups = group_tiles([everything[i] for i in rng.permutation(len(everything))])
    assert len(groups) == len(places)
    assert [g.tiles for g in groups] == sorted((len(p) for p in places), reverse=True)
    for group in groups:
        place = next(p for p in places if group.bounds == pytest.approx(_union(p), abs=1e-9))
        assert len(place) == group.tiles and _centre_of_one_of(group.center, place)


def test_a_gap_of_gap_tiles_joins_more_splits():
    assert len(group_tiles(_tiles(18, (0, 0), (1 + GAP, 0)))) == 1  # GAP missing tiles in between
    assert len(group_tiles(_tiles(18, (0, 0), (1 + GAP, 1 + GAP)))) == 1  # diagonally
    assert len(group_tiles(_tiles(18, (0, 0), (2 + GAP, 0)))) == 2
    assert len(group_tiles(_tiles(18, (0, 0), (2 + GAP, 0)), gap=GAP + 1)) == 1
    assert len(group_tiles(_tiles(18, (0, 0), (2**18 - 1, 0)))) == 2  # no wrap around the antimeridian


def test_zooms_of_one_place_make_one_group_measured_by_ground():
    coarse = mercantile.Tile(1000, 2000, 19)
    children = mercantile.children(coarse)
    fine = children + [grandchild for child in children for grandchild in mercantile.children(child)]
    elsewhere = _tiles(19, (5000, 2000), (5001, 2000))  # 2 tiles of ground; the first place has 21 of 1 tile
    groups = group_tiles([coarse, *fine, *elsewhere])
    assert [g.tiles for g in groups] == [2, 21]
    assert groups[1].bounds == pytest.approx(tuple(mercantile.bounds(coarse)), abs=1e-12)


def test_a_place_whose_middle_is_empty_opens_on_one_of_its_tiles():
    ring = _tiles(18, *[(x, y) for x in range(100) for y in range(100) if x in (0, 99) or y in (0, 99)])
    (group,) = group_tiles(ring)
    assert group.tiles == len(ring) and _centre_of_one_of(group.center, ring)


# ---- what a browser shows as the page opens ----------------------------------------------------------------

def _scene(root: Path, tiles: list[mercantile.Tile]) -> tuple[Path, Path]:
    """Green imagery tiles with a mask square in the middle of each."""
    label = np.zeros((256, 256), np.uint8)
    label[64:192, 64:192] = 1
    for t in tiles:
        write_image(root / "images" / str(t.z) / str(t.x) / f"{t.y}.png", np.full((256, 256, 3), IMAGERY, np.uint8))
        write_mask(root / "masks" / str(t.z) / str(t.x) / f"{t.y}.png", label, ["denim", "orange"])
    return root / "images", root / "masks"


def _shot(tmp_path: Path, images: Path, masks: Path, **options) -> np.ndarray:
    page = write_page(tmp_path / "page", images, masks=masks, opacity=1.0, progress=False, **options).folder
    server = serve_in_thread(page)
    try:
        pixels = screenshot(server.url, tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    height, width = pixels.shape[:2]
    return pixels[60: height - 60, 60: width - 200]  # the map, clear of the zoom buttons and panels


@pytest.mark.skipif(chromium() is None or not PARKING.is_dir(),
                    reason=SKIP_REASON if chromium() is None else "robosat's parking fixtures (../shared/) are absent")
def test_scattered_fixtures_open_on_imagery_and_masks(tmp_path):
    """robosat's parking tiles: three neighbours and one 150 km away. The page used to open on the empty
    middle; it opens on the three, with their imagery and mask. A file's own `match` property is text only."""
    outlines = json.loads((PARKING / "features.geojson").read_text())
    for feature in outlines["features"]:
        feature["properties"]["match"] = "tp"  # not scored: the outlines stay "predicted" magenta
    (tmp_path / "outlines.geojson").write_text(json.dumps(outlines))
    pixels = _shot(tmp_path, PARKING / "images", PARKING / "labels", outlines=tmp_path / "outlines.geojson")
    empty = close(pixels, BACKGROUND, 2)
    mask = close(pixels, LABEL_RED, 25)  # under the outlines' faint fill
    imagery = ~empty & ~mask & (pixels.astype(int).std(axis=-1) > 0)  # photo pixels: neither grey map nor mask
    assert imagery.mean() > 0.2, imagery.mean()
    assert mask.sum() > 5000, mask.sum()
    assert close(pixels, PREDICTED, 40).sum() > 200 and close(pixels, FOUND, 40).sum() == 0


GROUP_SCENES = {
    # name: (zoom, tiles): the largest place first
    "z18 towns far apart": (18, [(x, y) for x in range(70760, 70763) for y in range(104119, 104121)]
                            + [(69623, 104946), (80000, 90000)]),
    "z3 across the world": (3, [(0, 0), (0, 1), (1, 1), (7, 7)]),
    "z22 a few metres": (22, [(2**21, 2**21), (2**21 + 1, 2**21)] + [(2**21 + 40, 2**21 + 40)]),
    "a hollow place wider than the window at the lowest zoom": (
        18, [(x, y) for x in range(70000, 70080) for y in range(100000, 100080) if x in (70000, 70079)
             or y in (100000, 100079)] + [(10, 10)]),
}


@pytest.mark.skipif(chromium() is None, reason=SKIP_REASON)
@pytest.mark.parametrize("name", GROUP_SCENES)
def test_any_spread_and_zoom_opens_on_imagery_and_masks(tmp_path, name):
    zoom, xy = GROUP_SCENES[name]
    images, masks = _scene(tmp_path, _tiles(zoom, *xy))
    pixels = _shot(tmp_path, images, masks)
    assert close(pixels, IMAGERY, 3).mean() > 0.01 and close(pixels, MASK_RGB, 3).sum() > 40


PROBE = """<!DOCTYPE html><html><head><link rel="stylesheet" href="leaflet.css"><link rel="stylesheet" href="view.css">
</head><body><div id="map"></div>
<script src="leaflet.js"></script><script src="data.js"></script><script src="view.js"></script><script>
var map = window.RS_VIEW_MAP, out = {opened: map.getZoom(), markersOpened: 0};
out.showsLargest = map.getBounds().contains(L.latLngBounds(RS_VIEW.groups[0].bounds));
function markers() { var found = []; map.eachLayer(function (l) { if (l instanceof L.CircleMarker) found.push(l); });
                     return found; }
out.markersOpened = markers().length;
map.setZoom(3, {animate: false});
setTimeout(function () {
  out.zoomedOut = map.getZoom();
  out.markers = markers().map(function (m) { var p = m.getLatLng(); return [p.lat, p.lng]; });
  var far = RS_VIEW.groups[1].center;
  markers().filter(function (m) { return m.getLatLng().lat === far[0]; })[0].fire("click");
  setTimeout(function () {
    var c = map.getCenter(); out.center = [c.lat, c.lng]; out.zoom = map.getZoom(); out.markersAfter = markers().length;
    document.body.setAttribute("data-probe", JSON.stringify(out));
  }, 3000);
}, 1000);
</script></body></html>"""


@pytest.mark.skipif(chromium() is None, reason=SKIP_REASON)
def test_zoomed_out_every_place_has_a_marker_that_goes_there(tmp_path):
    zoom, xy = GROUP_SCENES["z18 towns far apart"]
    images, masks = _scene(tmp_path, _tiles(zoom, *xy))
    page = write_page(tmp_path / "page", images, masks=masks, progress=False).folder
    (page / "probe.html").write_text(PROBE)
    groups = group_tiles(_tiles(zoom, *xy))
    server = serve_in_thread(page)
    try:
        dom = dump_dom(server.url + "probe.html", tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    probe = json.loads(dom.split('data-probe="', 1)[1].split('"', 1)[0].replace("&quot;", '"'))
    # Opens on all of the largest place (a 3 x 2 block of 256 px tiles: nearly z18), without markers over it.
    assert probe["showsLargest"] and probe["opened"] > zoom - 1 and probe["markersOpened"] == 0
    assert probe["zoomedOut"] == 3
    assert np.allclose(sorted(map(tuple, probe["markers"])), sorted((g.center[1], g.center[0]) for g in groups))
    far = groups[1]
    assert probe["center"] == pytest.approx([far.center[1], far.center[0]], abs=1e-6)
    assert probe["zoom"] >= zoom and probe["markersAfter"] == 0
