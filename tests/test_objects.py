"""SpaceNet matching (scoring.objects) on hand-built polygons whose answers follow from the definitions."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from robosat_effnet.errors import ConfigError
from robosat_effnet.scoring.objects import equal_area_crs, match, match_classes, project


def square(x: float, y: float, side: float = 10.0):
    return shapely.box(x, y, x + side, y + side)


def shift_for(iou: float, side: float = 10.0) -> float:
    """Two side x side squares shifted by d along x: IoU = side(side-d) / side(side+d) = (side-d)/(side+d)."""
    return side * (1 - iou) / (1 + iou)


@pytest.mark.parametrize("iou, tp", [(0.51, 1), (0.49, 0)])
def test_shifted_square_matches_from_iou_0_5(iou, tp):
    result = match([square(shift_for(iou), 0)], [square(0, 0)])
    assert (result.tp, result.fp, result.fn) == (tp, 1 - tp, 1 - tp)
    assert result.precision == result.recall == result.f1 == tp
    if tp:
        assert result.matches[0][:2] == (0, 0) and result.matches[0][2] == pytest.approx(iou)
        assert result.mean_iou == pytest.approx(iou)
    else:
        assert result.mean_iou is None and result.unmatched_pred == [0] and result.unmatched_truth == [0]


def test_iou_exactly_at_the_threshold_is_a_match():
    # 3 x 3 squares shifted by 1: intersection 6, union 12, IoU exactly 0.5.
    assert match([square(1, 0, 3)], [square(0, 0, 3)], 0.5).tp == 1
    assert match([square(1, 0, 3)], [square(0, 0, 3)], 0.5 + 1e-5).tp == 0


def test_one_prediction_over_two_buildings_matches_at_most_one():
    two = [square(0, 0), square(10.5, 0)]
    # Over both equal buildings: IoU 100 / 205 < 0.5 with each, so neither is found.
    result = match([shapely.box(0, 0, 20.5, 10)], two)
    assert (result.tp, result.fp, result.fn) == (0, 1, 2)
    # Over a big and a small building: IoU 100 / 120 with the big one, one match, the small one missed.
    result = match([shapely.box(0, 0, 12, 10)], [square(0, 0), shapely.box(10, 0, 12, 10)])
    assert (result.tp, result.fp, result.fn) == (1, 0, 1)
    assert result.matches == [(0, 0, pytest.approx(100 / 120))] and result.unmatched_truth == [1]
    assert result.precision == 1.0 and result.recall == 0.5 and result.f1 == pytest.approx(2 / 3)


def test_one_to_one_largest_prediction_first():
    truth = [square(0, 0)]
    # B has the higher IoU (90/100) but A is larger and is visited first; it takes the building (90/110).
    a, b = shapely.box(1, 0, 11, 10), shapely.box(0, 0, 10, 9)
    result = match([b, a], truth)
    assert result.matches == [(1, 0, pytest.approx(90 / 110))] and result.unmatched_pred == [0]
    assert (result.tp, result.fp, result.fn) == (1, 1, 0)


def test_a_taken_building_leaves_the_next_best():
    # A and B are as large; A comes first in the input and takes the left building. B's best (IoU 70/130 >= 0.5)
    # is taken, so B gets the next best among the unmatched, the right one (30/170).
    truth = [square(0, 0), square(10, 0)]
    a, b = square(0, 0), shapely.box(3, 0, 13, 10)
    result = match([a, b], truth)
    assert (result.tp, result.fp, result.fn) == (1, 1, 1) and result.unmatched_pred == [1]
    result = match([a, b], truth, match_iou=0.1)
    assert result.matches == [(0, 0, 1.0), (1, 1, pytest.approx(30 / 170))]


def test_empty_prediction_and_empty_truth_have_no_division_error():
    truth = [square(0, 0), square(20, 0)]
    empty_pred = match([], truth)
    assert (empty_pred.tp, empty_pred.fp, empty_pred.fn) == (0, 0, 2)
    assert empty_pred.precision == 0.0 and empty_pred.recall == 0.0 and empty_pred.f1 == 0.0
    assert empty_pred.mean_iou is None
    empty_truth = match(truth, [])
    assert (empty_truth.tp, empty_truth.fp, empty_truth.fn) == (0, 2, 0)
    assert empty_truth.as_dict() == {"tp": 0, "fp": 2, "fn": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                     "mean_iou": None}
    assert match([], []).as_dict()["f1"] == 0.0


def test_empty_and_zero_area_geometries_are_not_objects():
    result = match([shapely.Polygon(), shapely.box(0, 0, 0, 10), square(0, 0)], [square(0, 0), shapely.Polygon()])
    assert (result.tp, result.fp, result.fn) == (1, 0, 0) and result.matches == [(2, 0, 1.0)]


def test_self_intersecting_outline_is_repaired():
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])  # two triangles of 25 m2 each
    result = match([bowtie], [bowtie])
    assert result.tp == 1 and result.mean_iou == pytest.approx(1.0)


@pytest.mark.parametrize("value", [0.0, -0.1, 1.5])
def test_match_iou_outside_0_1_is_refused(value):
    with pytest.raises(ConfigError, match="match_iou"):
        match([square(0, 0)], [square(0, 0)], value)


def test_classes_are_matched_apart():
    result = match_classes({"building": [square(0, 0)], "road": [square(50, 0)]},
                           {"building": [square(50, 0)], "road": [square(0, 0)]})
    assert {name: (r.tp, r.fp, r.fn) for name, r in result.items()} == {"building": (0, 1, 1), "road": (0, 1, 1)}


def test_equal_area_projection_gives_geodesic_areas_at_high_latitude():
    # A 0.001 x 0.0005 degree lon/lat cell at 60 N: pyproj.Geod's ellipsoidal area is the reference.
    cell = shapely.box(10.0, 60.0, 10.001, 60.0005)
    other = shapely.box(10.0004, 60.0001, 10.0014, 60.0006)
    crs = equal_area_crs([cell, other])
    a, b = project([cell, other], crs)
    geod = Geod(ellps="WGS84")
    assert a.area == pytest.approx(abs(geod.geometry_area_perimeter(cell)[0]), rel=1e-6)
    inter = abs(geod.geometry_area_perimeter(cell.intersection(other))[0])
    union = abs(geod.geometry_area_perimeter(cell)[0]) + abs(geod.geometry_area_perimeter(other)[0]) - inter
    assert match([b], [a], 0.1).mean_iou == pytest.approx(inter / union, rel=1e-6)


def rectangles(offset: float):
    """Disjoint rectangles, at most one inside each 10 x 10 cell of a grid shifted by `offset`."""
    cell = st.tuples(st.floats(0, 4), st.floats(0, 4), st.floats(1, 6), st.floats(1, 6))
    grid = st.dictionaries(st.tuples(st.integers(0, 3), st.integers(0, 3)), cell, max_size=10)
    return grid.map(lambda cells: [shapely.box(offset + 10 * i + x, offset + 10 * j + y, offset + 10 * i + x + w,
                                               offset + 10 * j + y + h) for (i, j), (x, y, w, h) in cells.items()])


@settings(max_examples=60, deadline=None)
@given(rectangles(0.0), rectangles(5.0), st.floats(0.5, 0.95))
def test_swapping_prediction_and_truth_swaps_fp_and_fn(pred, truth, threshold):
    # Each side is disjoint and the threshold >= 0.5: every polygon has at most one partner above it.
    forward, backward = match(pred, truth, threshold), match(truth, pred, threshold)
    assert forward.tp == backward.tp
    assert (forward.fp, forward.fn) == (backward.fn, backward.fp)
    assert sorted((p, t) for p, t, _ in forward.matches) == sorted((p, t) for t, p, _ in backward.matches)
    assert forward.tp + forward.fp == len(pred) and forward.tp + forward.fn == len(truth)
    # Every match really is at or above the threshold, by shapely's own IoU.
    for p, t, iou in forward.matches:
        assert iou == pytest.approx(pred[p].intersection(truth[t]).area / pred[p].union(truth[t]).area)
        assert iou >= threshold - 1e-6


def test_a_truth_polygon_is_never_matched_twice():
    rng = np.random.default_rng(0)
    truth = [square(20 * i, 0) for i in range(5)]
    pred = [square(20 * i + rng.uniform(-1, 1), rng.uniform(-1, 1)) for i in range(5) for _ in range(3)]
    result = match(pred, truth)
    assert result.tp == 5 and result.fp == 10 and result.fn == 0
    assert len({t for _, t, _ in result.matches}) == 5
