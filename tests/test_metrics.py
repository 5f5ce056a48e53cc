"""Confusion-matrix metrics, checked against hand-worked values and the textbook binary formulas."""

import math

import numpy as np
import pytest
import torch

from robosat_effnet.scoring.pixels import confusion_matrix, scores


def test_confusion_rows_are_truth_columns_prediction():
    c = confusion_matrix(torch.tensor([1, 1, 0]), torch.tensor([0, 1, 1]), num_classes=2)
    assert c.dtype == torch.long
    assert c.tolist() == [[0, 1], [1, 1]]  # truth 0 predicted 1 once; truth 1: predicted 0 once, 1 once


def test_confusion_accepts_numpy_and_ignores_nodata():
    target = np.array([[0, 255], [1, 1]], np.uint8)
    pred = np.array([[0, 1], [1, 0]], np.int64)
    assert confusion_matrix(pred, target, 2).tolist() == [[1, 0], [1, 1]]
    with pytest.raises(ValueError):
        confusion_matrix(pred, target, 2, ignore_index=None)  # 255 is no class then


def test_multiclass_mcc_hand_worked():
    # truth    0 0 1 1 2 2,  prediction 0 1 1 1 2 0
    # t = (2, 2, 2) per class in truth, p = (2, 3, 1) predicted, correct c = 4, samples s = 6
    # MCC = (c*s - p.t) / sqrt((s^2 - p.p)(s^2 - t.t)) = (24 - 12) / sqrt(22 * 24) = 12 / sqrt(528)
    c = confusion_matrix([0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2], num_classes=3)
    s = scores(c, ["a", "b", "c"])
    assert s["mcc"] == pytest.approx(12 / math.sqrt(528))  # 0.5222
    assert s["iou"] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert s["miou"] == pytest.approx(0.5)
    assert s["precision"] == pytest.approx([1 / 2, 2 / 3, 1])
    assert s["recall"] == pytest.approx([1 / 2, 1, 1 / 2])
    assert s["f1"] == pytest.approx([1 / 2, 0.8, 2 / 3])
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["classes"] == ["a", "b", "c"]


def test_binary_mcc_matches_the_classic_formula():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 1000)
    pred = np.where(rng.random(1000) < 0.8, truth, 1 - truth)
    tp = int(((pred == 1) & (truth == 1)).sum())
    tn = int(((pred == 0) & (truth == 0)).sum())
    fp = int(((pred == 1) & (truth == 0)).sum())
    fn = int(((pred == 0) & (truth == 1)).sum())
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    s = scores(confusion_matrix(pred, truth, 2))
    assert s["mcc"] == pytest.approx(expected)
    assert s["iou"][1] == pytest.approx(tp / (tp + fp + fn))


def test_undefined_scores():
    s = scores(confusion_matrix([0, 0], [0, 0], num_classes=2))
    assert math.isnan(s["iou"][1]) and s["iou"][0] == 1.0
    assert s["miou"] == 1.0  # mean over the classes that are defined
    assert s["mcc"] == 0.0  # scikit-learn's convention when a marginal is constant
    assert all(type(v) is float for v in s["iou"] + [s["miou"], s["mcc"], s["accuracy"]])


def test_large_counts_do_not_overflow():
    c = torch.tensor([[3_000_000_000, 1_000_000], [2_000_000, 500_000_000]])
    # Exactly, in Python integers (no overflow): tn = 3e9, fp = 1e6, fn = 2e6, tp = 5e8.
    tn, fp, fn, tp = 3_000_000_000, 1_000_000, 2_000_000, 500_000_000
    expected = (tp * tn - fp * fn) / math.isqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert scores(c)["mcc"] == pytest.approx(expected, rel=1e-9)  # 0.99651...
    assert 0.9965 < expected < 0.9966
