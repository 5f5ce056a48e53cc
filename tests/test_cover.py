"""`rs-effnet cover`: the tiles an area needs. Polygons (any declared CRS, GeoJSON or GeoPackage) give exactly
mercantile's tiles whose interior they overlap, each once; a GeoTIFF gives exactly the tiles `tile` writes."""

from __future__ import annotations

import json
from pathlib import Path

import mercantile
import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from robosat_effnet.cli import main
from robosat_effnet.prepare.cover import buffered, polygon_tiles
from robosat_effnet.tiles import read_tiles_csv, tile_files

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KAMPALA = DATA / "buildings-oam" / "kampala" / "labels.geojson"
SCENE = DATA / "geotiff" / "RGB.byte.tif"
needs_kampala = pytest.mark.skipif(not KAMPALA.is_file(), reason="../shared/data/buildings-oam is absent")
needs_scene = pytest.mark.skipif(not SCENE.is_file(), reason="../shared/data/geotiff is absent")


def run(*args: str):
    return CliRunner().invoke(main, ["cover", *map(str, args)])


def overlapping(area, zoom: int) -> list[mercantile.Tile]:
    """Every tile of the area's bounding box (and a ring beyond) whose square shares some area with it."""
    west, south, east, north = area.bounds
    ring = buffered(set(mercantile.tiles(west, south, east, north, zooms=[zoom])), 1)
    return sorted((t for t in ring if shapely.intersection(area, shapely.box(*mercantile.bounds(t))).area > 0),
                  key=lambda t: (t.z, t.x, t.y))


def kampala_hull():
    features = json.loads(KAMPALA.read_text())["features"]
    return shapely.convex_hull(shapely.MultiPoint(np.concatenate(
        [shapely.get_coordinates(shapely.geometry.shape(f["geometry"])) for f in features])))


def write_geojson(path: Path, geometry, crs: str | None = None) -> Path:
    data = {"type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(geometry)}]}
    if crs:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(data))
    return path


@needs_kampala
@pytest.mark.parametrize("zoom", [16, 18, 19])
def test_a_real_outline_gives_the_tiles_it_overlaps_each_once(tmp_path, zoom):
    hull = kampala_hull()
    area = write_geojson(tmp_path / "area.geojson", hull)
    result = run(tmp_path / "tiles.csv", "--zoom", zoom, "--area", area)
    assert result.exit_code == 0, result.output
    tiles = read_tiles_csv(tmp_path / "tiles.csv")
    assert tiles == overlapping(hull, zoom)
    assert len(tiles) == len(set(tiles)) and len(tiles) >= 2
    rows = (tmp_path / "tiles.csv").read_text().splitlines()
    assert rows[0] == f"{tiles[0].x},{tiles[0].y},{zoom}"


@needs_kampala
@pytest.mark.parametrize("crs, suffix", [("EPSG:32636", ".geojson"), ("EPSG:3857", ".geojson"),
                                         ("EPSG:32636", ".gpkg"), ("EPSG:4326", ".gpkg")])
def test_a_projected_or_geopackage_outline_gives_the_same_tiles(tmp_path, crs, suffix):
    geopandas = pytest.importorskip("geopandas")
    hull = kampala_hull()
    projected = geopandas.GeoSeries([hull], crs="EPSG:4326").to_crs(crs)
    if suffix == ".gpkg":
        area = tmp_path / "area.gpkg"
        geopandas.GeoDataFrame(geometry=projected).to_file(area, driver="GPKG")
    else:
        area = write_geojson(tmp_path / "area.geojson", projected.iloc[0], crs)
    result = run(tmp_path / "tiles.csv", "--zoom", 18, "--area", area)
    assert result.exit_code == 0, result.output
    back = projected.to_crs("EPSG:4326").iloc[0]
    assert read_tiles_csv(tmp_path / "tiles.csv") == overlapping(back, 18) == overlapping(hull, 18)


def test_overlapping_polygons_and_parts_list_each_tile_once(tmp_path):
    box = shapely.box(32.580, 0.310, 32.585, 0.315)
    shifted = shapely.affinity.translate(box, 0.002, 0.001)
    features = [{"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(g)}
                for g in (box, shifted, shapely.MultiPolygon([box, shifted]))]
    area = tmp_path / "area.geojson"
    area.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    assert run(tmp_path / "tiles.csv", "--zoom", 17, "--area", area).exit_code == 0
    tiles = read_tiles_csv(tmp_path / "tiles.csv")
    assert tiles == overlapping(shapely.union(box, shifted), 17) and len(tiles) == len(set(tiles))


@settings(max_examples=40, deadline=None)
@given(st.integers(-170_000, 170_000), st.integers(-80_000, 80_000),
       st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=3, max_size=8), st.integers(8, 15))
def test_any_polygon_gives_exactly_the_tiles_sharing_area_with_it(lon, lat, offsets, zoom):
    # Corners on a 0.001 degree grid: no corner a hair's breadth (1e-124) from a tile edge, where both sides'
    # floating-point answers are noise.
    area = shapely.convex_hull(shapely.MultiPoint([((lon + dx) / 1000, (lat + dy) / 1000) for dx, dy in offsets]))
    if area.area == 0:
        return
    found = sorted(polygon_tiles(area, zoom), key=lambda t: (t.z, t.x, t.y))
    assert found == overlapping(area, zoom)


def test_a_bbox_gives_its_tiles(tmp_path):
    result = run(tmp_path / "tiles.csv", "--zoom", 15, "--bbox", "32.58,0.31,32.61,0.33")
    assert result.exit_code == 0, result.output
    assert read_tiles_csv(tmp_path / "tiles.csv") == sorted(mercantile.tiles(32.58, 0.31, 32.61, 0.33, zooms=[15]))


def cornered_scene(path: Path) -> Path:
    """200 x 150 px of 10 m in UTM 36N whose upper-left corner is no data, as a rotated scene's borders are."""
    import rasterio
    from rasterio.transform import from_origin

    data = np.random.default_rng(0).integers(1, 256, (3, 150, 200)).astype(np.uint8)
    rows, cols = np.mgrid[0:150, 0:200]
    data[:, rows + cols < 120] = 0
    profile = dict(driver="GTiff", width=200, height=150, count=3, dtype="uint8", crs="EPSG:32636", nodata=0,
                   transform=from_origin(452000.0, 38800.0, 10.0, 10.0))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.mark.parametrize("scene, zoom", [
    pytest.param(SCENE, 9, marks=needs_scene), pytest.param(SCENE, 10, marks=needs_scene),
    ("generated", 16), ("generated", 17),
])
def test_a_geotiff_gives_exactly_the_tiles_tile_writes(tmp_path, scene, zoom):
    import rasterio

    from robosat_effnet.data.raster import scene_bounds
    from robosat_effnet.tiles import count_tiles

    if scene == "generated":
        scene = cornered_scene(tmp_path / "scene.tif")
    tiled = CliRunner().invoke(main, ["tile", str(scene), str(tmp_path / "tiles"), "--zoom", str(zoom), "-q"])
    assert tiled.exit_code == 0, tiled.output
    result = run(tmp_path / "tiles.csv", "--zoom", zoom, "--geotiff", scene)
    assert result.exit_code == 0, result.output
    written = list(tile_files(tmp_path / "tiles"))
    assert read_tiles_csv(tmp_path / "tiles.csv") == written
    with rasterio.open(scene) as src:  # the no-data corners: fewer tiles than the bounding box
        assert len(written) < count_tiles(scene_bounds(src), zoom) or zoom == 9


@pytest.mark.parametrize("tile, rings, expected", [
    (mercantile.Tile(5, 5, 4), 1, 9),
    (mercantile.Tile(5, 5, 4), 2, 25),
    (mercantile.Tile(0, 5, 4), 1, 9),  # x wraps around the antimeridian
    (mercantile.Tile(5, 0, 4), 1, 6),  # y stops at the top of the map
    (mercantile.Tile(0, 0, 0), 3, 1),  # the whole world is one tile
])
def test_buffer_adds_rings_of_neighbours(tile, rings, expected):
    grown = buffered({tile}, rings)
    assert len(grown) == expected and tile in grown
    assert all(0 <= t.x < 2**t.z and 0 <= t.y < 2**t.z and t.z == tile.z for t in grown)


def test_buffer_option(tmp_path):
    bbox = "32.5801,0.3101,32.5802,0.3102"  # inside one tile of zoom 15
    assert run(tmp_path / "one.csv", "--zoom", 15, "--bbox", bbox).exit_code == 0
    assert run(tmp_path / "ring.csv", "--zoom", 15, "--bbox", bbox, "--buffer", 1).exit_code == 0
    [center] = read_tiles_csv(tmp_path / "one.csv")
    assert read_tiles_csv(tmp_path / "ring.csv") == sorted(buffered({center}, 1))


def test_too_many_tiles_is_refused_before_enumerating(tmp_path):
    result = run(tmp_path / "tiles.csv", "--zoom", 30, "--bbox", "-10,-10,10,10")
    assert result.exit_code == 1 and "more than the maximum" in result.output and "--max-tiles" in result.output
    assert not (tmp_path / "tiles.csv").exists()


@pytest.mark.parametrize("args", [
    [], ["--bbox", "1,1,2,2", "--geotiff", __file__], ["--bbox", "1,2,3"], ["--bbox", "3,1,2,2"],
    ["--bbox", "1,nan,2,2"], ["--bbox", "a,b,c,d"], ["--bbox", "1,1,2,200"], ["--buffer", "-1", "--bbox", "1,1,2,2"],
])
def test_usage_errors_exit_2(tmp_path, args):
    result = run(tmp_path / "tiles.csv", "--zoom", 10, *args)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "tiles.csv").exists()


def test_a_rerun_keeps_its_file_and_another_file_is_not_replaced(tmp_path):
    out = tmp_path / "tiles.csv"
    assert run(out, "--zoom", 12, "--bbox", "1,1,1.2,1.2").exit_code == 0
    first = out.read_bytes()
    result = run(out, "--zoom", 12, "--bbox", "1,1,1.2,1.2")
    assert result.exit_code == 0 and "kept" in result.output and out.read_bytes() == first
    result = run(out, "--zoom", 13, "--bbox", "1,1,1.2,1.2")
    assert result.exit_code == 1 and "--overwrite" in result.output and out.read_bytes() == first
    assert run(out, "--zoom", 13, "--bbox", "1,1,1.2,1.2", "--overwrite").exit_code == 0
    assert {t.z for t in read_tiles_csv(out)} == {13}
    link = tmp_path / "link.csv"
    link.symlink_to(out)
    result = run(link, "--zoom", 12, "--bbox", "1,1,1.2,1.2", "--overwrite")
    assert result.exit_code == 1 and "symbolic link" in result.output


@pytest.mark.parametrize("content, why", [
    ('{"type": "FeatureCollection", "features": []}', "no polygons"),
    ('{"type": "Point", "coordinates": [1, 2]}', "no polygons"),
    ("not json", "cannot read GeoJSON"),
    ('{"type": "Polygon", "coordinates": [[[500000, 30000], [500100, 30000], [500100, 30100], [500000, 30000]]]}',
     "looks projected"),
])
def test_a_bad_area_is_one_line(tmp_path, content, why):
    area = tmp_path / "area.geojson"
    area.write_text(content)
    result = run(tmp_path / "tiles.csv", "--zoom", 10, "--area", area)
    assert result.exit_code == 1 and why in result.output and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "tiles.csv").exists()


def test_the_polygon_tiles_are_few_compared_with_the_bounding_box():
    # A thin diagonal strip: its bounding box holds many more tiles than it needs.
    strip = shapely.buffer(shapely.LineString([(0, 0), (0.2, 0.2)]), 0.001)
    found = polygon_tiles(strip, 15)
    box = list(mercantile.tiles(*strip.bounds, zooms=[15]))
    assert 0 < len(found) < len(box) / 4
    assert np.all([shapely.intersects(strip, shapely.box(*mercantile.bounds(t))) for t in found])


@pytest.mark.parametrize("corner", [mercantile.Tile(154802, 130818, 18), mercantile.Tile(300, 200, 9),
                                    mercantile.Tile(2, 1, 3)])
def test_an_outline_along_tile_edges_leaves_out_the_tiles_it_only_touches(tmp_path, corner):
    # An L of three tiles: its bounding box holds a fourth tile, which meets the L along two edges only.
    three = [corner, mercantile.Tile(corner.x + 1, corner.y, corner.z),
             mercantile.Tile(corner.x, corner.y + 1, corner.z)]
    outline = shapely.union_all([shapely.box(*mercantile.bounds(t)) for t in three])
    area = write_geojson(tmp_path / "area.geojson", outline)
    result = run(tmp_path / "tiles.csv", "--zoom", corner.z, "--area", area)
    assert result.exit_code == 0, result.output
    assert read_tiles_csv(tmp_path / "tiles.csv") == sorted(three)


@pytest.mark.parametrize("tile", [mercantile.Tile(154802, 130818, 18), mercantile.Tile(300, 200, 9),
                                  mercantile.Tile(0, 0, 3), mercantile.Tile(2, 1, 2)])
@pytest.mark.parametrize("how", ["bbox", "area"])
def test_an_area_on_tile_edges_gives_only_the_tiles_inside(tmp_path, tile, how):
    # A tile's own bounds touch its 8 neighbours along edges and corners: none of them holds any of the area.
    west, south, east, north = mercantile.bounds(tile)
    if how == "bbox":
        args = ["--bbox", ",".join(repr(v) for v in (west, south, east, north))]
    else:
        args = ["--area", write_geojson(tmp_path / "area.geojson", shapely.box(west, south, east, north))]
    result = run(tmp_path / "tiles.csv", "--zoom", tile.z, *args)
    assert result.exit_code == 0, result.output
    assert read_tiles_csv(tmp_path / "tiles.csv") == [tile]
    assert run(tmp_path / "children.csv", "--zoom", tile.z + 1, *args).exit_code == 0
    assert read_tiles_csv(tmp_path / "children.csv") == sorted(mercantile.children(tile))
