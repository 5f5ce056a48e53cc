"""`evaluate` with three classes: the multi-class MCC against its definition (a correlation of one-hot
indicators), the one-vs-rest MCCs against the textbook binary formula, on masks written by `predict_tiles`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import make_dataset
from robosat_effnet.data.transforms import to_tensor
from robosat_effnet.evaluation.evaluate import evaluate
from robosat_effnet.io import read_image, read_label
from robosat_effnet.models.checkpoint import ModelSpec, build_from_spec, save_checkpoint
from robosat_effnet.predict import predict_tiles
from robosat_effnet.tiles import tile_files

pytestmark = pytest.mark.usefixtures("one_thread")


def mcc_by_definition(pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Gorodkin's R_K: cov(X, Y) / sqrt(cov(X, X) cov(Y, Y)) for the N x K one-hot matrices of truth and
    prediction, cov(X, Y) = sum over classes of the covariance of the two indicator columns."""
    x, y = np.eye(k)[truth], np.eye(k)[pred]
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    return float((x * y).sum() / math.sqrt((x * x).sum() * (y * y).sum()))


def test_three_class_mcc_of_eval_is_the_real_value(tmp_path):
    data = make_dataset(tmp_path, n_train=1, n_val=3, num_classes=3, seed=4)
    images, labels = data.root / "validation" / "images", data.root / "validation" / "labels"
    torch.manual_seed(0)
    spec = ModelSpec(classes=["background", "building", "water"], colors=["denim", "orange", "blue"], tile_size=64)
    model = build_from_spec(spec).eval()
    head = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 3][-1]
    batch = torch.stack([to_tensor(read_image(p), spec.mean, spec.std) for p in tile_files(images).values()])
    with torch.no_grad():  # centre each class's logit so that an untrained network predicts all three
        head.bias -= model(batch).mean(dim=(0, 2, 3))
    checkpoint = save_checkpoint(tmp_path / "three.pth", model, spec)

    # The plain argmax (threshold 0) on both sides: this is about the MCC arithmetic, and a centred untrained
    # network is nowhere sure enough for the default mask threshold to keep any class but background.
    predict_tiles(checkpoint, images, tmp_path / "masks", device="cpu", progress=False, threshold=0)
    masks, truth_files = tile_files(tmp_path / "masks"), tile_files(labels)
    pred = np.concatenate([read_label(masks[t]).ravel() for t in truth_files]).astype(int)
    truth = np.concatenate([read_label(p).ravel() for p in truth_files.values()]).astype(int)
    assert min(np.mean(pred == k) for k in range(3)) > 0.05 and min(np.mean(truth == k) for k in range(3)) > 0.01

    result = evaluate(checkpoint, images, labels, device="cpu", progress=False, threshold=0)
    expected = mcc_by_definition(pred, truth, 3)
    assert result["mcc"] == pytest.approx(expected, abs=1e-9)
    per_class = []
    for k in range(3):
        p, t = pred == k, truth == k
        tp, tn, fp, fn = (int(np.sum(p & t)), int(np.sum(~p & ~t)), int(np.sum(p & ~t)), int(np.sum(~p & t)))
        per_class.append((tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    assert result["mcc_per_class"] == pytest.approx(per_class, abs=1e-9)
    assert result["pixels"] == np.bincount(truth, minlength=3).tolist()
