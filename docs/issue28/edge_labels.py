"""Label tiles with a third class on the inner rim of every building (issue 28: neighbours apart).

    python edge_labels.py LABELS.geojson LABEL_TILES OUT --px 3

For every 2-class label tile of LABEL_TILES (a slippy-map folder made by `rs-effnet rasterize` from
LABELS.geojson), writes OUT/z/x/y.png with class 2 ("touching" in dataset.toml, so that `features`, `eval` and
the study split blobs along it) on each building's pixels within PX px of
background (with --walls, a neighbour too: but the study's truth, the label tiles' polygons, has touching
buildings as one, so a split there is a false outline: a perfect model with walls scores 0.923 instead of 0.956 on
the Philippines' rest tiles). Unlike `rasterize --touching-px` (the band only where two buildings meet, 0.02% of
the pixels here, never predicted), every building has the rim, so the class is common enough to learn; where two
roofs nearly touch, their rims and the gap make a band at least 2 x PX wide. Nodata (255) and background stay.
"""
import argparse
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from PIL import Image
from rasterio.features import rasterize
from scipy import ndimage

from robosat_effnet.data.warp import tile_transform
from robosat_effnet.io import write_mask
from robosat_effnet.prepare.touching import disk
from robosat_effnet.tiles import tile_files, tile_path


def rim(ids: np.ndarray, radius: int, walls: bool) -> np.ndarray:
    """Pixels of a building (id > 0) with background within `radius` px; with `walls`, another building too."""
    footprint = disk(radius)
    low = ndimage.minimum_filter(ids, footprint=footprint, mode="nearest")
    if not walls:
        return (ids > 0) & (low == 0)
    high = ndimage.maximum_filter(ids, footprint=footprint, mode="nearest")
    return (ids > 0) & ((low < ids) | (high > ids))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("geojson")
    p.add_argument("labels")
    p.add_argument("out")
    p.add_argument("--px", type=int, default=3)
    p.add_argument("--walls", action="store_true", help="a rim on shared walls too (the label tiles merge them)")
    args = p.parse_args()
    frame = gpd.read_file(args.geojson).to_crs(3857)
    geoms = [g for g in frame.geometry if g is not None and not g.is_empty]
    index = gpd.GeoSeries(geoms, crs=3857).sindex
    r = args.px
    total = rimmed = 0
    for tile, path in sorted(tile_files(Path(args.labels), {".png"}).items()):
        with Image.open(path) as image:
            label = np.array(image)
        h, w = label.shape
        margin = tile_transform(tile, w, r, height=h)  # the tile grown by r px: neighbours count at its edges
        x0, y0 = margin * (0, 0)
        x1, y1 = margin * (w + 2 * r, h + 2 * r)
        near = index.query(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        out = label.copy()
        if len(near):
            ids = rasterize(((geoms[i], n + 1) for n, i in enumerate(near)), out_shape=(h + 2 * r, w + 2 * r),
                            transform=margin, dtype=np.int32)
            band = rim(ids, r, args.walls)[r:r + h, r:r + w]
            out[band & (label == 1)] = 2
        total += int((label == 1).sum())
        rimmed += int((out == 2).sum())
        write_mask(tile_path(Path(args.out), tile, "png"), out, ["#000000", "#ffffff", "#ff0000"])
    print(f"{args.out}: {rimmed / max(total, 1):.1%} of the building pixels on the rim")


if __name__ == "__main__":
    main()
