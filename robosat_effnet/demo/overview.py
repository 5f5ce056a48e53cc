"""The demo's one-picture summary: a scene with predicted and true outlines side by side, and the training curves.

    >>> from robosat_effnet.demo.overview import plot_overview
    >>> plot_overview("scene.tif", "predicted.geojson", "buildings.geojson", "history.csv", "overview.png")

Everything is drawn with matplotlib's object API (Figure, not pyplot): it needs no display and leaves the
backend of an interactive session (a notebook) alone.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robosat_effnet.errors import DatasetError, RasterError
from robosat_effnet.io import atomic_path

PREDICTED_COLOR = "#ffb000"  # amber: stands out on green ground and on grey, red and brown roofs
TRUE_COLOR = "#00e5ff"  # cyan


def read_scene(path: str | os.PathLike, max_side: int = 1024) -> tuple[np.ndarray, Any, Any]:
    """The RGB of a GeoTIFF scene, averaged down so its longer side is at most `max_side` px.

    Returns (H x W x 3 uint8 array, affine transform of the returned pixels, CRS).
    """
    import rasterio
    from rasterio.enums import Resampling

    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as e:
        raise RasterError(f"cannot open {path} as a raster: {e}; pass the GeoTIFF scene") from None
    with src:
        factor = max(1, math.ceil(max(src.width, src.height) / max_side))
        height, width = max(1, src.height // factor), max(1, src.width // factor)
        bands = [1, 2, 3] if src.count >= 3 else [1, 1, 1]
        data = src.read(bands, out_shape=(3, height, width), resampling=Resampling.average)
        transform = src.transform @ src.transform.scale(src.width / width, src.height / height)
        crs = src.crs
    return np.moveaxis(data, 0, -1).astype(np.uint8), transform, crs


def outline_segments(geojson: str | os.PathLike, crs: Any, transform: Any) -> list[np.ndarray]:
    """The rings (exteriors and holes) of every polygon in a lon/lat GeoJSON, as pixel (col, row) arrays.

    `crs` and `transform` are those of the image the outlines are drawn on (see `read_scene`).
    """
    import shapely
    from pyproj import Transformer

    path = Path(geojson)
    try:
        data = json.loads(path.read_text())
        geometries = shapely.from_geojson([json.dumps(f["geometry"]) for f in data.get("features", [])
                                           if f.get("geometry")])
    except (OSError, ValueError, KeyError, TypeError, shapely.errors.GEOSException) as e:
        raise DatasetError(f"cannot read polygons from {path}: {e}; pass a GeoJSON FeatureCollection") from None
    polygons = shapely.get_parts(geometries[shapely.get_type_id(geometries) >= 3]) if len(geometries) else []
    to_scene = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inverse = ~transform
    rings = []
    for polygon in polygons:
        for ring in [polygon.exterior, *polygon.interiors]:
            lon, lat = np.asarray(ring.coords)[:, :2].T
            x, y = to_scene.transform(lon, lat)
            col, row = inverse @ (np.asarray(x), np.asarray(y))
            rings.append(np.column_stack([col, row]))
    return rings


def plot_overview(scene: str | os.PathLike, predicted: str | os.PathLike, truth: str | os.PathLike,
                  history: str | os.PathLike | None, out: str | os.PathLike, *, iou: float | None = None,
                  classes: Sequence[str] = ("background", "building"), title: str | None = None,
                  max_side: int = 1024, dpi: int = 100) -> Path:
    """Write a PNG: `scene` with the `predicted` outlines, the same with the `truth` outlines, and the curves.

    Args:
        scene: GeoTIFF (any CRS) the outlines are drawn on.
        predicted, truth: lon/lat GeoJSON polygons (`rs-effnet features` output, the true buildings).
        history: a history.csv from `rs-effnet train` (training curves), or None to leave them out.
        out: the PNG to write (atomically).
        iou: shown in the predicted panel's title when given (e.g. the test building IoU).
        classes: class names whose per-class validation IoU columns are plotted.
        title: a line above everything.
        max_side: the scene is averaged down to at most this many px per side.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    from robosat_effnet.training.history import read_csv

    image, transform, crs = read_scene(scene, max_side)
    panels = [("predicted", outline_segments(predicted, crs, transform), PREDICTED_COLOR),
              ("true", outline_segments(truth, crs, transform), TRUE_COLOR)]
    rows = read_csv(history) if history is not None else []

    figure = Figure(figsize=(17 if rows else 12, 6.5 if title else 6.2), layout="constrained")
    grid = figure.add_gridspec(2, 3 if rows else 2, width_ratios=[1, 1, 0.8] if rows else [1, 1])
    for column, (name, rings, color) in enumerate(panels):
        axes = figure.add_subplot(grid[:, column])
        axes.imshow(image, interpolation="lanczos")
        axes.add_collection(LineCollection(rings, colors=color, linewidths=1.0), autolim=False)
        axes.set(xlim=(-0.5, image.shape[1] - 0.5), ylim=(image.shape[0] - 0.5, -0.5))  # the scene, not beyond
        heading = f"{name} buildings: {len(rings)} outlines"
        if name == "predicted" and iou is not None and not math.isnan(iou):
            heading += f", IoU {iou:.3f}"
        axes.set_title(heading)
        axes.set_axis_off()
    if title:
        figure.suptitle(title)
    if rows:
        _curves(figure.add_subplot(grid[0, 2]), figure.add_subplot(grid[1, 2]), rows, classes)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return path


def _curves(loss_axes: Any, iou_axes: Any, rows: list[dict[str, float]], classes: Sequence[str]) -> None:
    """Loss (training, validation) above, validation IoU below, per epoch."""
    epochs = [row["epoch"] for row in rows]
    for key, label in (("train_loss", "training"), ("val_loss", "validation")):
        if key in rows[0]:
            loss_axes.plot(epochs, [row[key] for row in rows], marker=".", label=label)
    loss_axes.set(ylabel="loss", title="training")
    keys = [("val_miou", "mIoU")] + [(f"val_iou_{name}", f"IoU {name}") for name in classes]
    for key, label in keys:
        if key in rows[0]:
            iou_axes.plot(epochs, [row[key] for row in rows], marker=".", label=label)
    iou_axes.set(xlabel="epoch", ylabel="validation IoU", ylim=(0, 1))
    for axes in (loss_axes, iou_axes):
        axes.grid(alpha=0.3)
        axes.legend(loc="best")
