"""Per-building metrics of mask tiles: polygons made exactly as `rs-effnet features` makes them, then matched.

Both the predicted masks and the label masks go through `vectorize.features.mask_features` (same polygonisation,
same merge across tile borders, same default simplification of one pixel), so a building cut by a tile border
is one polygon on each side, and the polygons scored are the ones a user would get from `features`.
They are then matched class by class with the SpaceNet protocol (`objects.match`, in an equal-area CRS).

Pixels without truth (label 255, or no imagery) are blanked in the prediction too, so no polygon on either
side covers them: a building the labels do not cover is neither missed nor invented.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import mercantile
import numpy as np

from robosat_effnet.colors import NODATA_INDEX
from robosat_effnet.io import write_mask
from robosat_effnet.outputs import temp_folder, writing
from robosat_effnet.scoring.objects import MatchResult, as_shown, equal_area_crs, match, project
from robosat_effnet.tiles import tile_files, tile_path


def mask_polygons(masks: str | os.PathLike, classes: dict[int, str], min_area: float = 0.0,
                  progress: bool = False, touching: int | None = None) -> dict[str, list]:
    """{class name: lon/lat polygons} of a folder of mask tiles, as `rs-effnet features` makes them.

    `touching`: the index of the band between touching buildings (`vectorize.split`); blobs are split with it, as
    `features` does for a dataset with a class named "touching", and the band itself is not an object class.
    """
    from robosat_effnet.vectorize.features import mask_features

    classes = {i: name for i, name in classes.items() if i != touching}
    result: dict[str, list] = {name: [] for name in classes.values()}
    if not tile_files(masks, {".png"}):
        return result
    for feature in mask_features(masks, classes, min_area=min_area, progress=progress, touching=touching).features:
        result[feature.class_name].append(feature.geometry)
    return result


def building_scores(pred_masks: str | os.PathLike, truth_masks: str | os.PathLike, classes: dict[int, str],
                    match_iou: float = 0.5, min_area: float = 0.0, progress: bool = False,
                    touching: int | None = None) -> dict[str, MatchResult]:
    """Match the polygons of two mask folders ({index: name} classes): {class name: MatchResult}.

    `min_area` (m2) drops smaller polygons on both sides, as `rs-effnet features --min-area` does; `touching`
    (the band class's index) splits blobs on both sides first, as in `mask_polygons`. MatchResult indices refer
    to the polygons in `mask_polygons` order.
    """
    pred = mask_polygons(pred_masks, classes, min_area, progress, touching)
    truth = mask_polygons(truth_masks, classes, min_area, progress, touching)
    crs = equal_area_crs(*pred.values(), *truth.values())
    return {name: match(project(pred[name], crs), project(truth[name], crs), match_iou) for name in pred}


class BuildingMasks:
    """Predicted and label masks of the tiles `rs-effnet eval` scores, kept in a temporary folder until matched.

        with BuildingMasks(spec.classes) as masks:
            masks.add(tile, prediction, target)          # H x W class indices; 255 = not labelled
            results = masks.score(match_iou=0.5)         # {class name: MatchResult}, background left out
    """

    def __init__(self, classes: list[str]):
        from robosat_effnet.config.dataset import touching_index

        self.classes = {i: name for i, name in enumerate(classes) if i > 0}  # background is not an object
        self.touching = touching_index(list(classes))  # the band between buildings splits them, as in features
        self._colors = ["#000000"] * len(classes)
        # Our temp name (host, pid): what a killed eval leaves is swept by the next one (outputs.temp_folder).
        self._dir = contextlib.ExitStack()
        self.root = self._dir.enter_context(temp_folder("eval"))

    def add(self, tile: mercantile.Tile, prediction: Any, target: np.ndarray) -> None:
        prediction = np.asarray(prediction, dtype=np.uint8)
        prediction = np.where(target == NODATA_INDEX, NODATA_INDEX, prediction).astype(np.uint8)
        # A full temporary disk reads as one line naming the folder (TMPDIR chooses another).
        with writing(f"{self.root} (temporary masks; set TMPDIR to use another disk)"):
            write_mask(tile_path(self.root / "pred", tile, "png"), prediction, self._colors)
            write_mask(tile_path(self.root / "truth", tile, "png"), target, self._colors)

    def score(self, match_iou: float = 0.5, min_area: float = 0.0, progress: bool = False) -> dict[str, MatchResult]:
        return building_scores(self.root / "pred", self.root / "truth", self.classes, match_iou, min_area, progress,
                               self.touching)

    def close(self) -> None:
        self._dir.close()

    def __enter__(self) -> BuildingMasks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def format_buildings(buildings: dict[str, dict[str, Any]], match_iou: float | None = None) -> str:
    """Per-building rows (tp, fp, fn, precision, recall, F1, mean IoU of matches) for `rs-effnet eval`'s table."""
    def number(value: float | None) -> str:
        return "   n/a" if value is None else f"{value:6.4f}"

    width = max(8, *(len(name) for name in buildings))
    at = f" (IoU >= {match_iou:g})" if match_iou is not None else ""
    lines = [f"per building{at}:",
             f"{'class':<{width}}      tp      fp      fn  precision  recall      F1  mean IoU"]
    for name, r in ((name, as_shown(r)) for name, r in buildings.items()):  # n/a where a ratio is 0 / 0
        lines.append(f"{name:<{width}}  {r['tp']:6d}  {r['fp']:6d}  {r['fn']:6d}     {number(r['precision'])}  "
                     f"{number(r['recall'])}  {number(r['f1'])}    {number(r['mean_iou'])}")
    return "\n".join(lines)
