"""Slippy-map folders (`z/x/y.ext`, robosat's layout) and tile neighbourhoods, over mercantile."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import mercantile

from robosat_effnet.errors import DatasetError, TooManyTilesError
from robosat_effnet.io import IMAGE_EXTENSIONS
from robosat_effnet.limits import MAX_ZOOM
from robosat_effnet.text import TEXT_ENCODING, ascii_int, shown

WEB_MERCATOR = "EPSG:3857"  # the slippy map's CRS: tiles, their pixels and our outlines before lon/lat
MAX_LATITUDE = 85.0511287798066  # web mercator's square world stops here (degrees north and south)


def tile_files(root: str | os.PathLike, extensions: set[str] | None = None) -> dict[mercantile.Tile, Path]:
    """All tiles of a slippy-map folder as {Tile: path}, sorted by (z, x, y).

    Files and folders whose names are not ASCII digits (leftovers, `.tmp` files, `².png`, `１`) are ignored.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"slippy-map folder {root} does not exist; pass a folder laid out as z/x/y.<ext>")
    extensions = extensions or IMAGE_EXTENSIONS
    found: dict[mercantile.Tile, Path] = {}
    for z_dir in root.iterdir():
        z = ascii_int(z_dir.name)
        if z is None or not z_dir.is_dir():
            continue
        for x_dir in z_dir.iterdir():
            x = ascii_int(x_dir.name)
            if x is None or not x_dir.is_dir():
                continue
            for path in x_dir.iterdir():
                y = ascii_int(path.stem)
                if y is not None and path.suffix.lower() in extensions:
                    problem = impossible(x, y, z)  # before mercantile sees it: it warns about such tiles
                    if problem:
                        raise DatasetError(f"{path} is not a tile of the slippy map: {problem}; move it out of {root} "
                                           "or fix its folder names (z/x/y)")
                    found[mercantile.Tile(x, y, z)] = path
    return dict(sorted(found.items(), key=lambda item: (item[0].z, item[0].x, item[0].y)))


def tile_path(root: str | os.PathLike, tile: mercantile.Tile, ext: str) -> Path:
    """The path of `tile` in a slippy-map folder: root/z/x/y.ext."""
    return Path(root) / str(tile.z) / str(tile.x) / f"{tile.y}.{ext.lstrip('.')}"


def neighbours(tile: mercantile.Tile) -> dict[tuple[int, int], mercantile.Tile]:
    """The 8 neighbours of a tile keyed by (dx, dy); x wraps around the antimeridian, y stops at the poles."""
    n = 2**tile.z
    result = {}
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if (dx, dy) != (0, 0) and 0 <= tile.y + dy < n:
                result[(dx, dy)] = mercantile.Tile((tile.x + dx) % n, tile.y + dy, tile.z)
    return result


def count_tiles(bounds: tuple[float, float, float, float], zoom: int) -> int:
    """How many tiles of `zoom` cover a lon/lat bounding box, without enumerating them."""
    west, south, east, north = bounds
    if west > east:  # crosses the antimeridian
        return count_tiles((west, south, 180.0, north), zoom) + count_tiles((-180.0, south, east, north), zoom)
    upper_left = mercantile.tile(west, north, zoom)
    # Nudge the far corner inwards so a bound lying exactly on a tile edge does not add a row of empty tiles.
    eps = 1e-9
    lower_right = mercantile.tile(max(west, east - eps), min(north, south + eps), zoom)
    return (lower_right.x - upper_left.x + 1) * (lower_right.y - upper_left.y + 1)


def check_count(count: int, zoom: int, max_tiles: int, what: str,
                remedy: str = "use a lower --zoom or raise --max-tiles") -> None:
    """TooManyTilesError when `count` tiles of `zoom` (what cutting `what` gives) exceed `max_tiles`; the one
    message of `tile`, `predict scene.tif` and `cover`."""
    if count > max_tiles:
        raise TooManyTilesError(f"zoom {zoom} cuts {what} into {count:,} tiles, more than the maximum "
                                f"{max_tiles:,}; {remedy}")


def impossible(x: int, y: int, z: int) -> str | None:
    """Why x, y, z is no slippy-map tile (a zoom beyond 0..MAX_ZOOM, an x or y beyond the zoom's grid), or None."""
    if not 0 <= z <= MAX_ZOOM:
        return f"zoom {shown(z)} is outside 0..{MAX_ZOOM}"
    side = 2**z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < side:
            return f"{name} {shown(value)} is outside 0..{side - 1}, the tiles of zoom {z}"
    return None


def read_tiles_csv(path: str | os.PathLike) -> list[mercantile.Tile]:
    """Read robosat's tiles.csv (`x,y,z` rows); DatasetError naming the first row that is not a possible tile.

    Cells are ASCII digits, perhaps after a '-' (spaces around them allowed); a byte-order mark (Excel's
    "CSV UTF-8") is dropped.
    """
    tiles = []
    try:
        with open(path, newline="", encoding=TEXT_ENCODING) as f:
            for number, row in enumerate(csv.reader(f), 1):
                if not row or not row[0].strip():
                    continue
                numbers = [ascii_int(value.strip(), signed=True) for value in row]  # -1: a number, outside the grid
                if len(numbers) != 3 or None in numbers:
                    problem = "not three integers"
                else:
                    x, y, z = numbers
                    problem = impossible(x, y, z)  # before mercantile sees it: it warns about such tiles
                if problem:
                    raise DatasetError(f"{path} row {number} ({','.join(row)[:60]}) is not a tile of the slippy map: "
                                       f"{problem}; expected rows of x,y,z integers")
                tiles.append(mercantile.Tile(x, y, z))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"cannot read tiles file {path}: {e}; expected rows of x,y,z integers") from None
    return tiles


def write_tiles_csv(path: str | os.PathLike, tiles) -> None:
    """Write tiles as robosat's tiles.csv (`x,y,z` rows), atomically."""
    from robosat_effnet.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")  # as robosat writes it
        for tile in tiles:
            writer.writerow([tile.x, tile.y, tile.z])
