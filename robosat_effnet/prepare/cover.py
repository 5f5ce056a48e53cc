"""The slippy-map tiles an area needs (robosat's `cover`): from polygons, a lon/lat box, or a GeoTIFF's data.

Polygons (GeoJSON in its declared CRS, or a GeoPackage/any OGR file through geopandas) are brought to lon/lat,
where tile edges are lines of constant longitude and latitude, so "the tiles a polygon needs" is exact:
mercantile lists the tiles of each part's bounding box and shapely keeps those whose interior the polygon
overlaps (a tile only touched along an edge or at a corner holds none of it). A GeoTIFF's tiles are the tiles
`rs-effnet tile` writes: those of its footprint holding any data, found by the same warp `tile` reads through.
Each tile is listed once, sorted by (z, x, y); `buffer` adds N rings of neighbouring tiles for context.
"""

from __future__ import annotations

import os
from pathlib import Path

import mercantile
import numpy as np

from robosat_effnet.data.geojson import POLYGONAL, check_finite, check_lonlat, geojson_crs, polygon_shape, read_geojson
from robosat_effnet.errors import ConfigError, DatasetError
from robosat_effnet.limits import MAX_ZOOM
from robosat_effnet.prepare.tile import DEFAULT_MAX_TILES, read_tile
from robosat_effnet.tiles import MAX_LATITUDE, check_count, count_tiles

GEOJSON = (".geojson", ".json")
MAX_BUFFER = 64  # rings of context tiles: each costs (2N + 1)^2 tiles per tile at worst
COVER_SIZE = 256  # px: the tile size `tile` cuts by default; the data test below warps at it, as `tile` does

SMALLER = "use a lower --zoom, a smaller area or raise --max-tiles"


def parse_bbox(text: str):
    """'W,S,E,N' in lon/lat -> a shapely box; ConfigError saying what is wrong with it."""
    import shapely

    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"bbox {text!r} is not four numbers W,S,E,N (lon/lat), e.g. 32.58,0.31,32.59,0.32") \
            from None
    if not all(np.isfinite([west, south, east, north])):
        raise ConfigError(f"bbox {text!r} holds a number that is not finite; give four finite numbers W,S,E,N")
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise ConfigError(f"bbox {text!r} is not W,S,E,N in lon/lat with W < E within -180..180 and S < N within "
                          "-90..90; give the west, south, east, north edges in that order")
    return shapely.box(west, south, east, north)


def read_area(path: str | os.PathLike):
    """The union of a vector file's polygons in lon/lat (GeoJSON in its declared CRS; .gpkg etc. via geopandas)."""
    import shapely
    from pyproj import CRS

    path = Path(path)
    if path.suffix.lower() in GEOJSON:
        data, features = read_geojson(path)
        geometries = [polygon_shape(f["geometry"], n, path) for n, f in enumerate(features)
                      if isinstance(f, dict) and isinstance(f.get("geometry"), dict)
                      and f["geometry"].get("type") in POLYGONAL]
        crs = geojson_crs(data, path)
    else:
        geometries, crs = _ogr_polygons(path)
    if not geometries:
        raise DatasetError(f"{path} holds no polygons; pass the area of interest as a Polygon or MultiPolygon "
                           "(e.g. a HOT Tasking Manager project's outline)")
    geometries = np.array(geometries, dtype=object)
    crs = CRS.from_user_input(crs)
    if crs.is_geographic:
        check_lonlat(geometries, path, crs.to_string())
    area = shapely.union_all(shapely.make_valid(geometries))
    if crs.to_epsg() != 4326:
        from pyproj import Transformer

        transformer = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        # Densify first: a straight edge in metres is a slight curve in degrees.
        step = max(shapely.length(area) / 10_000, 1e-9)
        area = shapely.transform(shapely.segmentize(area, step),
                                 lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
        if not np.isfinite(shapely.total_bounds(area)).all():
            raise DatasetError(f"{path}'s coordinates do not transform from {crs.to_string()} to lon/lat; check "
                               "the CRS it declares")
    if area.is_empty or area.area == 0:
        raise DatasetError(f"{path}'s polygons enclose no area; pass the area of interest as a polygon")
    return area


def _ogr_polygons(path: Path):
    import warnings

    from robosat_effnet.extras import require_footprints as require

    geopandas, _ = require(f"reading {path.suffix or 'this file'}")
    import pyogrio.errors

    try:
        with warnings.catch_warnings():  # shapely's "invalid value" for NaN: check_finite names the feature
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = geopandas.read_file(path)
    except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as e:
        raise DatasetError(f"cannot read {path}: {e}; pass a GeoJSON, GeoPackage or another vector file") from None
    keep = [g for g in frame.geometry if g is not None and g.geom_type in POLYGONAL]
    if keep and frame.crs is None:
        raise DatasetError(f"{path} declares no CRS; give it one (e.g. ogr2ogr -a_srs EPSG:4326) or convert it to "
                           "GeoJSON in lon/lat")
    if keep:
        check_finite(np.array(keep, dtype=object), path)
    return keep, frame.crs


def polygon_tiles(area, zoom: int, max_tiles: int = DEFAULT_MAX_TILES) -> set[mercantile.Tile]:
    """The tiles of `zoom` whose interior a lon/lat (Multi)Polygon overlaps."""
    import shapely

    area = shapely.clip_by_rect(area, -180, -MAX_LATITUDE, 180, MAX_LATITUDE)  # web mercator's world
    parts = list(getattr(area, "geoms", [area]))
    boxes = [part.bounds for part in parts if not part.is_empty]
    check_count(sum(count_tiles(box, zoom) for box in boxes), zoom, max_tiles, "the area's bounding box", SMALLER)
    candidates = sorted({tile for box in boxes for tile in mercantile.tiles(*box, zooms=[zoom])})
    if not candidates:
        return set()
    squares = shapely.box(*np.array([tuple(mercantile.bounds(t)) for t in candidates]).T)
    shapely.prepare(area)
    inside = shapely.intersects(area, squares) & ~shapely.touches(area, squares)
    return {tile for tile, keep in zip(candidates, inside, strict=True) if keep}


def scene_tiles(scene: str | os.PathLike, zoom: int, max_tiles: int = DEFAULT_MAX_TILES) -> set[mercantile.Tile]:
    """The tiles `rs-effnet tile SCENE --zoom Z` writes (default size and resampling): its footprint's tiles that
    hold any data, tested through the same warped read."""
    from robosat_effnet.data.raster import open_scene, scene_bounds
    from robosat_effnet.data.warp import DEFAULT_RESAMPLING, resampling_method

    with open_scene(scene) as src:
        bounds = scene_bounds(src)
        check_count(count_tiles(bounds, zoom), zoom, max_tiles, str(scene), SMALLER)
        # Only the validity band is read (no pixel bands): the warper's alpha is what `tile` tests too.
        resampling = resampling_method(DEFAULT_RESAMPLING)
        return {tile for tile in mercantile.tiles(*bounds, zooms=[zoom])
                if read_tile(src, tile, COVER_SIZE, [], resampling)[1].any()}


def buffered(tiles: set[mercantile.Tile], rings: int) -> set[mercantile.Tile]:
    """`tiles` with `rings` rings of neighbours around each (x wraps around the antimeridian, y stops at the
    poles)."""
    if rings == 0 or not tiles:
        return set(tiles)
    grown = set()
    for tile in tiles:
        side = 2**tile.z
        for dy in range(-rings, rings + 1):
            if 0 <= tile.y + dy < side:
                grown.update(mercantile.Tile((tile.x + dx) % side, tile.y + dy, tile.z)
                             for dx in range(-rings, rings + 1))
    return grown


def cover(zoom: int, *, area=None, scene: str | os.PathLike | None = None, buffer: int = 0,
          max_tiles: int = DEFAULT_MAX_TILES) -> list[mercantile.Tile]:
    """The sorted tiles of `zoom` an area needs: a lon/lat shapely `area` (see `read_area`, `parse_bbox`) or
    the data of a GeoTIFF `scene` (a path or URL), plus `buffer` rings of neighbours.

    Raises TooManyTilesError before enumerating when the area's bounding box (or the result) holds more than
    `max_tiles` tiles, ConfigError for a zoom or buffer out of range, DatasetError when nothing is covered.
    """
    if not 0 <= zoom <= MAX_ZOOM:
        raise ConfigError(f"zoom {zoom} is out of range; use 0..{MAX_ZOOM}")
    if not 0 <= buffer <= MAX_BUFFER:
        raise ConfigError(f"buffer {buffer} is out of range; use 0..{MAX_BUFFER} rings of tiles")
    if (area is None) == (scene is None):
        raise ConfigError("give exactly one of an area (polygons or a bbox) and a GeoTIFF scene")
    tiles = scene_tiles(scene, zoom, max_tiles) if scene is not None else polygon_tiles(area, zoom, max_tiles)
    if not tiles:
        what = f"{scene} holds no data" if scene is not None else "the area covers no tile"
        raise DatasetError(f"{what} at zoom {zoom}; check the input and its CRS")
    tiles = buffered(tiles, buffer)
    check_count(len(tiles), zoom, max_tiles, f"the area with {buffer} ring(s) of buffer", SMALLER)
    return sorted(tiles, key=lambda t: (t.z, t.x, t.y))


def write_cover(out: str | os.PathLike, tiles: list[mercantile.Tile], inputs: list, overwrite: bool = False) -> bool:
    """Write `tiles` to `out` as tiles.csv, atomically; False when `out` already lists exactly them (kept).

    Another existing file is replaced only with `overwrite` (a tiles.csv carries no mark saying who wrote it);
    a link, folder or device there, or an output that is one of `inputs`, is an OutputError before writing.
    """
    from robosat_effnet.errors import OutputError
    from robosat_effnet.outputs import check_separate, check_writable, plain_file, sweep_temp, writing
    from robosat_effnet.tiles import write_tiles_csv

    out = Path(out)
    check_separate([out], inputs)
    if plain_file(out):
        text = "".join(f"{t.x},{t.y},{t.z}\n" for t in tiles)
        with open(out, "rb") as f:  # only as much as ours would hold: a huge file is not read whole
            if f.read(len(text) + 1) == text.encode():
                return False
        if not overwrite:
            raise OutputError(f"output {out} exists and lists other tiles (or is another file); pass --overwrite "
                              "to replace it, or name a new file")
    sweep_temp(check_writable(out.parent, create=False), target=out)
    with writing(out):
        write_tiles_csv(out, tiles)
    return True
