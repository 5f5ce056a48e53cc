"""Vector-to-vector scoring (`rs-effnet score`): predicted outlines against true ones, building by building.

Steps, each on both files alike:

1. read polygons into lon/lat (`vectors.read_polygons`, any CRS the file declares);
2. classes: with `class_name`, a file whose features carry the class property keeps the polygons of that class
   (case ignored) and a file without the property is taken as wholly that class; without `class_name`, if both
   files carry the property every class is matched on its own (and pooled), else all polygons are one class "all";
3. area restriction (`area`, lon/lat polygon, e.g. `vectors.tiles_area` of the imagery's tiles): polygons are
   clipped to it and what lies outside is dropped, as SpaceNet cuts its labels to each image chip. A building
   half outside the imagery is then scored on its visible half, which is all a prediction can cover, and truth
   outside the imagery is never a missed building;
4. projection into one equal-area CRS centred on the data (`objects.equal_area_crs`): true m2 and true IoU;
5. `min_area` (m2, after clipping) drops smaller polygons on both sides, as ramp filters both and SpaceNet
   drops its slivers of under 20 px;
6. `objects.match` per class.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from robosat_effnet.errors import ConfigError, DatasetError
from robosat_effnet.evaluation.vectors import Polygons, read_polygons
from robosat_effnet.scoring.objects import MatchResult, as_shown, equal_area_crs, match, project

log = logging.getLogger("robosat_effnet")
ALL = "all"


def score_files(
    pred: str | os.PathLike,
    truth: str | os.PathLike,
    match_iou: float = 0.5,
    min_area: float = 0.0,
    area: Any = None,
    class_name: str | None = None,
    class_property: str = "class",
) -> dict[str, Any]:
    """Score the polygons of file `pred` against those of file `truth` (see the module docstring).

    `area`: None, or a lon/lat shapely polygon (`vectors.tiles_area(dir)`, `vectors.polygon_area(file)`).
    Returns {tp, fp, fn, precision, recall, f1, mean_iou} pooled over classes, plus "classes" ({name: the same
    keys}), "matches" ([pred feature, truth feature, IoU] with feature numbers of the files, class by class),
    "fp_features" and "fn_features" (feature numbers), "pred_polygons" and "truth_polygons" (scored after
    clipping and min_area), "match_iou", "min_area".
    """
    if min_area < 0:
        raise ConfigError(f"min_area {min_area} is negative; give an area in m2, e.g. 2")
    p, t = read_polygons(pred, class_property), read_polygons(truth, class_property)
    groups = _classes(p, t, class_name, class_property)
    if area is not None:
        before = len(p.geometries) + len(t.geometries)
        p, t = _clip(p, area), _clip(t, area)
        if before and not len(p.geometries) and not len(t.geometries):
            raise DatasetError(f"no polygon of {p.source} or {t.source} lies inside the scoring area; check that "
                               "--tiles/--area cover the same ground as the polygons (and each file's CRS)")
    _check_overlap(p, t)
    crs = equal_area_crs(p.geometries, t.geometries)
    p_metric, t_metric = project(p.geometries, crs), project(t.geometries, crs)
    p_keep, t_keep = _at_least(p_metric, min_area), _at_least(t_metric, min_area)
    per_class: dict[str, MatchResult] = {}
    for name, (p_mask, t_mask) in groups(p, t).items():
        pi, ti = np.flatnonzero(p_mask & p_keep), np.flatnonzero(t_mask & t_keep)
        found = match(p_metric[pi], t_metric[ti], match_iou)
        # Back to feature numbers of the files.
        found.matches = [(int(p.index[pi[a]]), int(t.index[ti[b]]), iou) for a, b, iou in found.matches]
        found.unmatched_pred = [int(p.index[pi[a]]) for a in found.unmatched_pred]
        found.unmatched_truth = [int(t.index[ti[b]]) for b in found.unmatched_truth]
        per_class[name] = found
    pooled = sum(per_class.values(), MatchResult())
    return {**pooled.as_dict(), "classes": {name: r.as_dict() for name, r in per_class.items()},
            "matches": [list(m) for m in pooled.matches], "fp_features": pooled.unmatched_pred,
            "fn_features": pooled.unmatched_truth, "pred_polygons": pooled.tp + pooled.fp,
            "truth_polygons": pooled.tp + pooled.fn, "match_iou": match_iou, "min_area": min_area}


def _classes(p: Polygons, t: Polygons, class_name: str | None, prop: str):
    """A function (pred, truth) -> {class: (pred mask, truth mask)}, checked on the files as read."""
    def names(polygons: Polygons) -> set[str]:
        return set() if polygons.classes is None else {c.lower() for c in polygons.classes if c is not None}

    def mask(polygons: Polygons, name: str) -> np.ndarray:
        if polygons.classes is None:
            return np.ones(len(polygons.geometries), bool)
        return np.array([c is not None and c.lower() == name for c in polygons.classes], dtype=bool)

    if class_name is not None:
        wanted = class_name.lower()
        carried = names(p) | names(t)
        if carried and wanted not in carried:
            raise ConfigError(f"class {class_name!r} is in neither {p.source} nor {t.source} (property {prop!r} "
                              f"holds {', '.join(sorted(carried))}); pick one of those")
        return lambda a, b: {class_name: (mask(a, wanted), mask(b, wanted))}
    if p.classes is not None and t.classes is not None:
        found = sorted(names(p) | names(t))
        return lambda a, b: {name: (mask(a, name), mask(b, name)) for name in found}
    for one, other in ((p, t), (t, p)):
        if len(names(one)) > 1:
            log.warning("%s holds classes %s but %s has no %r property: all are matched as one; pass --class NAME "
                        "to score one", one.source, ", ".join(sorted(names(one))), other.source, prop)
    return lambda a, b: {ALL: (np.ones(len(a.geometries), bool), np.ones(len(b.geometries), bool))}


def _clip(polygons: Polygons, area) -> Polygons:
    """Polygons cut to the area (only their polygonal parts), those left empty dropped."""
    import shapely

    geometries = polygons.geometries
    if not len(geometries):
        return polygons
    shapely.prepare(area)
    inside = shapely.contains(area, geometries)
    clipped = geometries.copy()
    cut = np.flatnonzero(~inside)
    if len(cut):
        pieces = shapely.intersection(geometries[cut], area)
        # A cut along a shared edge leaves lines or points beside the area: keep only polygons.
        clipped[cut] = [_polygonal(g) for g in pieces]
    keep = ~shapely.is_empty(clipped)
    result = polygons.subset(keep)
    result.geometries = clipped[keep]
    return result


def _polygonal(geometry):
    import shapely

    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [g for g in shapely.get_parts(geometry) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _at_least(metric: np.ndarray, min_area: float) -> np.ndarray:
    import shapely

    return shapely.area(metric) >= min_area if len(metric) else np.zeros(0, bool)


def _check_overlap(p: Polygons, t: Polygons) -> None:
    """Files whose extents do not even touch are almost always a CRS mistake, not a score of 0."""
    import shapely

    if not len(p.geometries) or not len(t.geometries):
        return
    a, b = shapely.total_bounds(p.geometries), shapely.total_bounds(t.geometries)
    if a[0] > b[2] or b[0] > a[2] or a[1] > b[3] or b[1] > a[3]:
        raise DatasetError(
            f"{p.source} (lon {a[0]:.5f}..{a[2]:.5f}, lat {a[1]:.5f}..{a[3]:.5f}) and {t.source} (lon {b[0]:.5f}.."
            f"{b[2]:.5f}, lat {b[1]:.5f}..{b[3]:.5f}) do not overlap anywhere; check the CRS each file declares "
            "and that both cover the same ground")


def format_table(result: dict[str, Any]) -> str:
    """tp, fp, fn, precision, recall, f1, mean_iou as a fixed-width table: one row per class, then all pooled."""
    def number(value: float | None) -> str:
        return "     n/a" if value is None else f"{value:8.4f}"

    rows = dict(result["classes"])
    if len(rows) > 1:
        rows["(pooled)"] = result
    width = max(8, *(len(name) for name in rows))
    lines = [f"{'class':<{width}}      tp      fp      fn  precision    recall        f1  mean_iou"]
    for name, r in ((name, as_shown(r)) for name, r in rows.items()):  # n/a where a ratio is 0 / 0
        lines.append(f"{name:<{width}}  {r['tp']:6d}  {r['fp']:6d}  {r['fn']:6d}   {number(r['precision'])}  "
                     f"{number(r['recall'])}  {number(r['f1'])}  {number(r['mean_iou'])}")
    return "\n".join(lines)
