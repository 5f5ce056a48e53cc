"""Where the tiles are: groups of neighbouring tiles, so that the page opens on data wherever the tiles lie.

Tiles of several towns, or of a tasking grid, lie far apart: the box around all of them is mostly empty, and
at a zoom that shows it whole the tiles are far too small to draw. The page opens on the largest group of
neighbouring tiles instead and marks every group at the zooms too low for imagery (a click goes there).

    groups = group_tiles(tiles)    # largest first; each with its tile count, extent and a tile to open on
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import mercantile

GAP = 1  # a gap of up to this many missing tiles does not split a group (a tile `predict` skipped, a cloud)


@dataclass(frozen=True)
class Group:
    """Neighbouring tiles: how many, their extent (west, south, east, north) and the centre (lon, lat) of the
    group's tile nearest the middle of that extent, where the page looks when the group is too big to show whole."""

    tiles: int
    bounds: tuple[float, float, float, float]
    center: tuple[float, float]


def group_tiles(tiles: Iterable[mercantile.Tile], gap: int = GAP) -> list[Group]:
    """Groups of tiles no more than `gap` tiles apart, largest (most ground) first.

    Tiles of several zooms are grouped where they lie at the lowest zoom among them, so the zooms of one
    place (z19, z20, z21 of the same ground) make one group. Tiles do not wrap around the antimeridian.
    """
    tiles = list(tiles)
    if not tiles:
        return []
    zoom = min(tile.z for tile in tiles)
    cells: dict[tuple[int, int], list[mercantile.Tile]] = {}
    for tile in tiles:
        shift = tile.z - zoom
        cells.setdefault((tile.x >> shift, tile.y >> shift), []).append(tile)
    groups = [_group([t for cell in found for t in cells[cell]], len(found)) for found in _components(cells, gap)]
    groups.sort(key=lambda pair: (-pair[0], -pair[1].tiles, pair[1].bounds))
    return [group for _, group in groups]


def _components(cells: dict[tuple[int, int], list], gap: int) -> list[list[tuple[int, int]]]:
    """The cells reachable from each other in steps of at most gap + 1 cells (in x, y or both)."""
    unseen = set(cells)
    reach = range(-gap - 1, gap + 2)
    found = []
    for start in sorted(cells):
        if start not in unseen:
            continue
        unseen.discard(start)
        component, stack = [], [start]
        while stack:
            x, y = stack.pop()
            component.append((x, y))
            for dx in reach:
                for dy in reach:
                    if (x + dx, y + dy) in unseen:
                        unseen.discard((x + dx, y + dy))
                        stack.append((x + dx, y + dy))
        found.append(component)
    return found


def _group(tiles: list[mercantile.Tile], cells: int) -> tuple[int, Group]:
    # Extents in Web Mercator fractions of the world (0..1, y down), exact for every zoom up to 52.
    boxes = [(t.x / 2**t.z, t.y / 2**t.z, (t.x + 1) / 2**t.z, (t.y + 1) / 2**t.z) for t in tiles]
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    mx, my = (left + right) / 2, (top + bottom) / 2
    nearest = min(boxes, key=lambda b: ((b[0] + b[2]) / 2 - mx) ** 2 + ((b[1] + b[3]) / 2 - my) ** 2)
    west, north = _lonlat(left, top)
    east, south = _lonlat(right, bottom)
    return cells, Group(len(tiles), (west, south, east, north),
                        _lonlat((nearest[0] + nearest[2]) / 2, (nearest[1] + nearest[3]) / 2))


def _lonlat(x: float, y: float) -> tuple[float, float]:
    """A point given in Web Mercator world fractions (x east, y south, 0..1) as (lon, lat)."""
    return x * 360.0 - 180.0, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y))))
