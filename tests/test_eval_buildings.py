"""Per-building metrics of `rs-effnet eval`: outlines of masks as `features` makes them, merged across tiles."""

from __future__ import annotations

import json
from pathlib import Path

import mercantile
import numpy as np
import pytest
from click.testing import CliRunner

from robosat_effnet.cli import main
from robosat_effnet.evaluation.buildings import BuildingMasks, building_scores, mask_polygons
from robosat_effnet.evaluation.evaluate import evaluate
from robosat_effnet.io import write_mask
from robosat_effnet.vectorize.features import tile_polygons

SIZE = 64
LEFT = mercantile.tile(32.5825, 0.3476, 18)  # Kampala
RIGHT = mercantile.Tile(LEFT.x + 1, LEFT.y, LEFT.z)
COLORS = ["denim", "orange"]


def pair(root: Path, mosaic: np.ndarray) -> Path:
    """Cut a SIZE x 2*SIZE mask into the two horizontally neighbouring tiles LEFT and RIGHT."""
    for tile, part in ((LEFT, mosaic[:, :SIZE]), (RIGHT, mosaic[:, SIZE:])):
        write_mask(root / str(tile.z) / str(tile.x) / f"{tile.y}.png", part, COLORS)
    return root


def building(cols: slice, rows: slice = slice(20, 44)) -> np.ndarray:
    mosaic = np.zeros((SIZE, 2 * SIZE), np.uint8)
    mosaic[rows, cols] = 1
    return mosaic


def test_a_building_cut_by_a_tile_border_is_counted_once(tmp_path):
    across = building(slice(40, 88))  # 24 px on each tile
    truth = pair(tmp_path / "truth", across)
    # Each tile alone sees two pieces: without the merge there would be two buildings.
    pieces = sum(len(sum(tile_polygons(across[:, s] == 1, t), [])) for t, s in
                 ((LEFT, slice(0, SIZE)), (RIGHT, slice(SIZE, 2 * SIZE))))
    assert pieces == 2 and len(mask_polygons(truth, {1: "building"})["building"]) == 1
    same = building_scores(pair(tmp_path / "same", across), truth, {1: "building"})["building"]
    assert (same.tp, same.fp, same.fn) == (1, 0, 0) and same.mean_iou == pytest.approx(1.0)
    # Only the left tile's half predicted: IoU exactly 24/48 = 0.5, a match at 0.5 and not above.
    half = pair(tmp_path / "half", building(slice(40, SIZE)))
    at = building_scores(half, truth, {1: "building"})["building"]
    assert (at.tp, at.fp, at.fn) == (1, 0, 0) and at.mean_iou == pytest.approx(0.5)
    above = building_scores(half, truth, {1: "building"}, match_iou=0.51)["building"]
    assert (above.tp, above.fp, above.fn) == (0, 1, 1)


def test_one_blob_over_two_buildings_finds_at_most_one(tmp_path):
    two = building(slice(10, 30)) | building(slice(31, 41))  # 20 and 10 px wide, one px apart
    truth = pair(tmp_path / "truth", two)
    blob = pair(tmp_path / "blob", building(slice(10, 41)))  # IoU 20/31 with the wider one
    result = building_scores(blob, truth, {1: "building"})["building"]
    assert (result.tp, result.fp, result.fn) == (1, 0, 1) and result.mean_iou == pytest.approx(20 / 31, abs=1e-6)


def test_min_area_and_empty_sides(tmp_path):
    speck = building(slice(100, 102), slice(5, 7))  # 2 x 2 px of 64 px z18 tiles (2.39 m): about 23 m2
    truth = pair(tmp_path / "truth", building(slice(40, 88)))
    pred = pair(tmp_path / "pred", building(slice(40, 88)) | speck)
    assert building_scores(pred, truth, {1: "building"})["building"].fp == 1
    assert building_scores(pred, truth, {1: "building"}, min_area=50)["building"].fp == 0
    nothing = pair(tmp_path / "nothing", np.zeros((SIZE, 2 * SIZE), np.uint8))
    empty = building_scores(nothing, truth, {1: "building"})["building"]
    assert (empty.tp, empty.fp, empty.fn, empty.f1) == (0, 0, 1, 0.0)
    assert building_scores(truth, nothing, {1: "building"})["building"].fp == 1


def test_unlabelled_pixels_are_blanked_in_the_prediction():
    with BuildingMasks(["background", "building"]) as masks:
        target = np.zeros((SIZE, SIZE), np.uint8)
        target[:, 32:] = 255  # no truth here (no imagery, or labelled 255)
        prediction = np.zeros((SIZE, SIZE), np.uint8)
        prediction[10:20, 40:50] = 1  # a building where nothing is known: not a false positive
        masks.add(LEFT, prediction, target)
        result = masks.score()["building"]
        root = masks.root
    assert (result.tp, result.fp, result.fn) == (0, 0, 0)
    assert not root.exists()  # the temporary masks are gone


@pytest.fixture(scope="module")
def validation(trained_run):
    """(checkpoint, images, labels): the session's tiny trained model and its validation tiles."""
    root = trained_run["dataset"].root / "validation"
    return trained_run["checkpoint"], root / "images", root / "labels"


def test_eval_per_building_equals_features_of_predicted_masks(tmp_path, validation):
    checkpoint, images, labels = validation
    # Independently: masks from `rs-effnet predict`, outlines of both folders, matched.
    result = CliRunner().invoke(main, ["predict", str(images), str(tmp_path / "masks"), "--checkpoint",
                                       str(checkpoint), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    expected = building_scores(tmp_path / "masks", labels, {1: "building"}, match_iou=0.3)["building"]
    assert expected.tp > 0 and expected.fp + expected.fn > 0  # found buildings, and not all of them: a real case
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(checkpoint), str(images), str(labels), "--json",
                                       str(out), "--device", "cpu", "-q", "--match-iou", "0.3"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["match_iou"] == 0.3 and set(data["buildings"]) == {"building"}
    got = data["buildings"]["building"]
    assert {k: got[k] for k in ("tp", "fp", "fn")} == {"tp": expected.tp, "fp": expected.fp, "fn": expected.fn}
    assert got["f1"] == pytest.approx(expected.f1)
    assert "per building (IoU >= 0.3)" in result.output and f"{got['tp']:6d}" in result.output
    # Off: the pixel metrics alone, as before.
    assert "buildings" not in evaluate(checkpoint, images, labels, device="cpu", progress=False, match_iou=None)


def test_eval_match_iou_out_of_range_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(tmp_path / "x.pth"), str(tmp_path), str(tmp_path),
                                       "--match-iou", "1.5", "-q"])
    assert result.exit_code == 2 and "match-iou" in result.output


def test_the_touching_band_splits_buildings_and_is_not_scored_itself():
    pytest.importorskip("skimage")
    # Three buildings in a row, sharing walls: class 1 with a band of class 2 ("touching") at each wall.
    target = np.zeros((SIZE, SIZE), np.uint8)
    target[16:48, 4:58] = 1
    target[16:48, 20:24] = target[16:48, 38:42] = 2
    merged = np.where(target > 0, 1, 0).astype(np.uint8)  # one blob over all three, no band
    results = {}
    for name, prediction in (("split", target), ("merged", merged)):
        with BuildingMasks(["background", "building", "touching"]) as masks:
            masks.add(LEFT, prediction, target)
            results[name] = masks.score()
    assert set(results["split"]) == {"building"}
    split = results["split"]["building"]
    assert (split.tp, split.fp, split.fn) == (3, 0, 0)
    # The merged blob covers each building at IoU about 1/3: no match, three missed, one invented.
    merged_result = results["merged"]["building"]
    assert (merged_result.tp, merged_result.fp, merged_result.fn) == (0, 1, 3)
