"""Greedy one-to-one polygon matching: the SpaceNet building protocol, written for this package.

The protocol (SpaceNet's evaluation, as solaris and hotosm/ramp implement it):

- Predictions are visited one at a time, largest area first (ties keep input order). Solaris visits them in
  file order; a fixed order makes the result independent of how a file happens to be sorted.
- Each takes, among the true polygons not matched yet, the one of highest IoU with it. The pair is a match
  (a true positive) when that IoU >= `match_iou`: exactly at the threshold counts, as in ramp (solaris
  asks for more than the threshold). IoUs less than 1e-6 below the threshold count as at it: an edge that is
  straight in lon/lat becomes a slight curve in any metric projection, which moves a building's IoU by up to
  about 1e-6 (measured at 45 degrees latitude), and that must not flip an exact tie such as half a building.
- Unmatched predictions are false positives, unmatched true polygons false negatives.
- precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = their harmonic mean; each is 0.0 where its
  denominator is 0 (no prediction, no truth, or neither), as solaris and ramp define them, so an empty
  prediction scores 0 TP, precision 0, recall 0, F1 0 and nothing divides by zero. `mean_iou` is the mean IoU
  of the matches, None when there are none.

With `match_iou >= 0.5` and no two polygons of one side overlapping (true for outlines made from masks and for
mapped buildings), each polygon has at most one partner above the threshold, so the visiting order does not
change the result and swapping prediction and truth swaps FP and FN and keeps TP. Below 0.5 it can.

Geometries must be in a metric CRS in which areas are true: IoU is a ratio of areas, so an equal-area
projection gives it exactly, whatever the latitude. `project()` puts lon/lat polygons into one.
Empty and zero-area geometries are not objects: they are neither counted nor matched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robosat_effnet.data.vectors import equal_area_crs, project  # noqa: F401  (re-exported: score, view)
from robosat_effnet.errors import ConfigError

TIE = 1e-6  # an IoU this close below the threshold counts as at it (see the module docstring)


@dataclass
class MatchResult:
    """Counts and pairs of one matching.

    `matches` holds (pred index, truth index, IoU) with indices into the sequences given to `match`;
    `unmatched_pred` (false positives) and `unmatched_truth` (false negatives) are indices too, so that a
    map can colour every polygon.
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    matches: list[tuple[int, int, float]] = field(default_factory=list)
    unmatched_pred: list[int] = field(default_factory=list)
    unmatched_truth: list[int] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp else 0.0

    @property
    def mean_iou(self) -> float | None:
        return float(np.mean([iou for _, _, iou in self.matches])) if self.matches else None

    def as_dict(self) -> dict[str, Any]:
        """{tp, fp, fn, precision, recall, f1, mean_iou}: plain numbers, ready for JSON."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision, "recall": self.recall,
                "f1": self.f1, "mean_iou": self.mean_iou}

    def __add__(self, other: MatchResult) -> MatchResult:
        """Pooled counts of two matchings (e.g. of several classes); indices are kept as they are."""
        return MatchResult(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.matches + other.matches,
                           self.unmatched_pred + other.unmatched_pred, self.unmatched_truth + other.unmatched_truth)


def as_shown(scores: Mapping[str, Any]) -> dict[str, Any]:
    """The scores a table prints: precision, recall and F1 None (printed n/a) where their ratio is 0 / 0, as the
    pixel table prints them (the values themselves stay 0.0, as solaris and ramp define them, for JSON)."""
    tp, fp, fn = scores["tp"], scores["fp"], scores["fn"]
    undefined = {"precision": tp + fp == 0, "recall": tp + fn == 0, "f1": tp + fp + fn == 0}
    return {**scores, **{key: None for key, empty in undefined.items() if empty}}


def _objects(geometries: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(valid geometries, their indices, their areas) of the non-empty, non-zero-area input geometries."""
    import shapely

    array = np.asarray(list(geometries) if not isinstance(geometries, np.ndarray) else geometries, dtype=object)
    if array.size == 0:
        return array, np.zeros(0, np.int64), np.zeros(0)
    invalid = ~shapely.is_valid(array)
    if invalid.any():  # self-intersecting outlines are common in digitised data; their area is still meant
        array = array.copy()
        array[invalid] = shapely.make_valid(array[invalid])
    areas = shapely.area(array)
    keep = np.flatnonzero(areas > 0)
    return array, keep, areas


def match(pred: Sequence, truth: Sequence, match_iou: float = 0.5) -> MatchResult:
    """Match predicted against true polygons (shapely geometries in one metric, equal-area CRS).

    See the module docstring for the protocol. Candidates come from a shapely STRtree of the true polygons,
    so the cost grows with the number of overlapping pairs, not with pred x truth.
    """
    import shapely

    if not 0 < match_iou <= 1:
        raise ConfigError(f"match_iou {match_iou} is outside (0, 1]; use e.g. 0.5 (SpaceNet's threshold)")
    pred_all, pred_keep, pred_area = _objects(pred)
    truth_all, truth_keep, truth_area = _objects(truth)
    candidates: dict[int, list[tuple[float, int]]] = {}
    if len(pred_keep) and len(truth_keep):
        tree = shapely.STRtree(truth_all[truth_keep])
        pi, ti = tree.query(pred_all[pred_keep], predicate="intersects")
        p, t = pred_keep[pi], truth_keep[ti]
        inter = shapely.area(shapely.intersection(pred_all[p], truth_all[t]))
        iou = inter / (pred_area[p] + truth_area[t] - inter)
        for a, b, value in zip(p.tolist(), t.tolist(), iou.tolist(), strict=True):
            if value > 0:
                candidates.setdefault(a, []).append((value, b))
        for pairs in candidates.values():
            pairs.sort(key=lambda pair: (-pair[0], pair[1]))  # highest IoU first, then input order
    result = MatchResult()
    taken: set[int] = set()
    for i in sorted(pred_keep.tolist(), key=lambda i: (-pred_area[i], i)):
        best = next(((value, j) for value, j in candidates.get(i, []) if j not in taken), None)
        if best is not None and best[0] >= match_iou - TIE:
            taken.add(best[1])
            result.matches.append((i, best[1], float(best[0])))
        else:
            result.unmatched_pred.append(i)
    result.unmatched_truth = [j for j in truth_keep.tolist() if j not in taken]
    result.tp, result.fp, result.fn = len(result.matches), len(result.unmatched_pred), len(result.unmatched_truth)
    return result


def match_classes(pred: Mapping[str, Sequence], truth: Mapping[str, Sequence],
                  match_iou: float = 0.5) -> dict[str, MatchResult]:
    """`match` per class: {class name: MatchResult} for every class in either mapping (missing = no polygons)."""
    names = list(dict.fromkeys([*pred, *truth]))
    return {name: match(pred.get(name, []), truth.get(name, []), match_iou) for name in names}
