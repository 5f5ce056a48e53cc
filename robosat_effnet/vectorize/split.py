"""Buildings that touch: splitting merged blobs into one polygon per building.

Neighbours that share a wall merge into one blob in a building mask. `rasterize --touching-px N` burns an extra
class, `touching`, on the building pixels near another building (`robosat_effnet.prepare.touching`); a model
trained on such labels predicts the band, and `features` puts the buildings back together here: the connected
parts of the building class are the seeds, and a watershed over building + touching pixels (flooding by distance
to the nearest seed) gives every band pixel to its nearest building.

Split pieces of neighbouring buildings share edges, so they cannot be joined across tile borders by a union as
`features` joins unsplit polygons; `merge_across_tiles` joins a piece only with the piece of the next tile that it
continues into (the one with which it shares the longest stretch of tile border).
"""

from __future__ import annotations

import mercantile
import numpy as np

from robosat_effnet.extras import require_ndimage


def split_buildings(mask: np.ndarray, index: int, touching: int) -> np.ndarray:
    """Instance labels (int32, 0 = none) of class `index` in a mask whose touching band is class `touching`.

    Seeds are the 4-connected parts of class `index`; every touching pixel goes to its nearest seed (a watershed
    over building + touching pixels, flooding in order of distance to the seeds). A part of the band with no seed
    next to it (a building too small to keep an interior) becomes a building of its own.
    """
    ndimage = require_ndimage("touching buildings")
    from skimage.segmentation import watershed

    building, region = mask == index, (mask == index) | (mask == touching)
    seeds, count = ndimage.label(building)
    if not (region & ~building).any():
        return seeds.astype(np.int32)
    orphans, _ = ndimage.label(region)
    seeded = np.unique(orphans[building])
    lonely = region & ~np.isin(orphans, seeded)
    extra, _ = ndimage.label(lonely)
    seeds[lonely] = extra[lonely] + count
    distance = ndimage.distance_transform_edt(seeds == 0)
    return watershed(distance, markers=seeds, mask=region, connectivity=1).astype(np.int32)


def instance_polygons(labels: np.ndarray, tile: mercantile.Tile) -> tuple[list, list]:
    """Polygons of each instance label of one square tile in global pixel coordinates: (inside, touching the edge)."""
    import shapely
    from affine import Affine
    from rasterio.features import shapes

    size = labels.shape[0]
    x0, y0 = tile.x * size, tile.y * size
    inside, edge = [], []
    for geometry, _ in shapes(labels, mask=labels > 0, transform=Affine.translation(x0, y0), connectivity=4):
        polygon = shapely.geometry.shape(geometry)
        minx, miny, maxx, maxy = polygon.bounds
        touches = minx <= x0 or miny <= y0 or maxx >= x0 + size or maxy >= y0 + size
        (edge if touches else inside).append(polygon)
    return inside, edge


def merge_across_tiles(pieces: list, tiles: list) -> list:
    """Join edge pieces (global pixel coordinates) that continue each other across a tile border.

    Two pieces of different tiles join when one of them shares its longest stretch of border with the other, so a
    building continuing into two pieces joins both, while the neighbour it shares a wall with stays apart even if
    the split lines of the two tiles meet the border a pixel apart.
    """
    import shapely

    if not pieces:
        return []
    geometries = np.array(pieces, dtype=object)
    left, right = shapely.STRtree(geometries).query(geometries, predicate="touches")
    keep = (left < right) & np.array([tiles[a] != tiles[b] for a, b in zip(left, right, strict=True)], dtype=bool)
    left, right = left[keep], right[keep]
    shared = shapely.length(shapely.intersection(geometries[left], geometries[right]))
    best = {}  # piece -> (length, partner)
    for a, b, length in zip(left.tolist(), right.tolist(), shared.tolist(), strict=True):
        for one, other in ((a, b), (b, a)):
            if length > 0 and length > best.get(one, (0.0, -1))[0]:
                best[one] = (length, other)
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for one, (_, other) in best.items():
        parent[root(one)] = root(other)
    groups: dict[int, list] = {}
    for i, piece in enumerate(pieces):
        groups.setdefault(root(i), []).append(piece)
    return [shapely.union_all(group) if len(group) > 1 else group[0] for group in groups.values()]
