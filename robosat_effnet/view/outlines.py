"""Outlines for the map page: GeoJSON in lon/lat, and each feature's match (true/false positive, missed)."""

from __future__ import annotations

import os

# Line colours of the outline layers: saturated, so they stand out on imagery and on the mask overlay.
OUTLINE_COLORS = {
    "outlines": "#ff00ff",  # predicted outlines, no truth to score them against
    "truth": "#ffff00",  # true outlines, nothing to score
    "tp": "#00ff00",  # a predicted outline matched to a true one (IoU >= match_iou)
    "fp": "#ff0000",  # a predicted outline without a true building
    "fn": "#00ffff",  # a true building no prediction matched (missed)
}
LEGEND = [
    {"key": "outlines", "label": "predicted"},
    {"key": "truth", "label": "true"},
    {"key": "tp", "label": "found (true positive)"},
    {"key": "fp", "label": "false positive"},
    {"key": "fn", "label": "missed (false negative)"},
]


def load_outlines(path: str | os.PathLike) -> dict:
    """A GeoJSON FeatureCollection of the file's polygons in lon/lat (EPSG:4326), whatever CRS it declares,
    with each feature's properties for the page's pop-ups."""
    from shapely.geometry import mapping

    from robosat_effnet.evaluation.vectors import read_polygons

    layer = read_polygons(path)  # checks the file and reprojects; one line for anything wrong with it
    features = [{"type": "Feature", "geometry": mapping(geometry), "properties": dict(properties)}
                for geometry, properties in zip(layer.geometries, layer.properties, strict=True)]
    return {"type": "FeatureCollection", "features": features}


def match_outlines(pred: dict, truth: dict, match_iou: float) -> None:
    """Mark each feature with `match` (tp/fp for predictions, tp/fn for the truth) and `iou`, in place,
    by the SpaceNet matching that `rs-effnet score` reports (in an equal-area CRS, so IoUs are true)."""
    from shapely.geometry import shape

    from robosat_effnet.scoring.objects import equal_area_crs, match, project

    pred_shapes = [shape(f["geometry"]) for f in pred["features"]]
    true_shapes = [shape(f["geometry"]) for f in truth["features"]]
    crs = equal_area_crs(pred_shapes, true_shapes)
    result = match(project(pred_shapes, crs), project(true_shapes, crs), match_iou=match_iou)
    for feature in pred["features"]:
        feature["properties"].update(match="fp")
    for feature in truth["features"]:
        feature["properties"].update(match="fn")
    for p, t, iou in result.matches:
        pred["features"][p]["properties"].update(match="tp", iou=round(float(iou), 4))
        truth["features"][t]["properties"].update(match="tp", iou=round(float(iou), 4))
