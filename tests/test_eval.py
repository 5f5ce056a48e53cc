"""`rs-effnet eval`: metrics of a checkpoint on a labelled slippy map, checked against masks from `predict`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import make_dataset
from robosat_effnet.cli import main
from robosat_effnet.data.transforms import to_tensor
from robosat_effnet.evaluation.evaluate import evaluate, one_vs_rest_mcc
from robosat_effnet.io import read_image, read_label
from robosat_effnet.models.checkpoint import ModelSpec, build_from_spec, save_checkpoint
from robosat_effnet.threshold import MASK_THRESHOLD
from robosat_effnet.tiles import tile_files


@pytest.fixture(scope="module")
def validation(tmp_path_factory):
    """(checkpoint, images, labels): an untrained b0 U-Net whose output bias is set so that it predicts
    both classes about equally often at the default mask threshold. Eval only has to agree with `predict`, not
    to score well, and this keeps the test free of training time."""
    tmp = tmp_path_factory.mktemp("eval")
    data = make_dataset(tmp, n_train=1, n_val=4, seed=3)
    images, labels = data.root / "validation" / "images", data.root / "validation" / "labels"
    torch.manual_seed(0)
    spec = ModelSpec(classes=["background", "building"], colors=["denim", "orange"], tile_size=64)
    model = build_from_spec(spec).eval()
    head = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 2][-1]
    batch = torch.stack([to_tensor(read_image(p), spec.mean, spec.std) for p in tile_files(images).values()])
    with torch.no_grad():
        logits = model(batch)
        # A building needs p1 >= MASK_THRESHOLD, i.e. a logit gap of at least logit(MASK_THRESHOLD): centring the
        # gap there splits the pixels in two under the default rule, and leaves the pixels between 0.5 and the
        # threshold as buildings for the argmax, so eval drawing its masks by another rule than predict shows.
        gap = (logits[:, 1] - logits[:, 0]).median() - math.log(MASK_THRESHOLD / (1 - MASK_THRESHOLD))
        head.bias[1] -= gap
    checkpoint = save_checkpoint(tmp / "balanced.pth", model, spec)
    return checkpoint, images, labels


def test_eval_matches_predicted_masks(tmp_path, validation):
    checkpoint, images, labels = validation
    # Independently: masks written by `rs-effnet predict`, compared with the labels pixel by pixel in numpy.
    result = CliRunner().invoke(main, ["predict", str(images), str(tmp_path / "masks"), "--checkpoint",
                                       str(checkpoint), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    masks, truth = tile_files(tmp_path / "masks"), tile_files(labels)
    assert set(masks) == set(truth)
    pred = np.concatenate([read_label(masks[t]).ravel() for t in truth])
    target = np.concatenate([read_label(p).ravel() for p in truth.values()])
    tp = [np.sum((pred == k) & (target == k)) for k in (0, 1)]
    iou = [tp[k] / np.sum((pred == k) | (target == k)) for k in (0, 1)]
    precision = [tp[k] / np.sum(pred == k) for k in (0, 1)]
    recall = [tp[k] / np.sum(target == k) for k in (0, 1)]
    # Binary MCC from its textbook formula on the foreground class.
    p, t = pred == 1, target == 1
    tp1, tn1, fp1, fn1 = (np.sum(p & t), np.sum(~p & ~t), np.sum(p & ~t), np.sum(~p & t))
    mcc = (tp1 * tn1 - fp1 * fn1) / math.sqrt(float((tp1 + fp1) * (tp1 + fn1) * (tn1 + fp1) * (tn1 + fn1)))

    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(checkpoint), str(images), str(labels), "--json",
                                       str(out), "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["classes"] == ["background", "building"] and data["tiles"] == len(truth)
    assert data["mask_threshold"] == MASK_THRESHOLD  # both commands at their default
    assert 0.2 < np.mean(pred == 1) < 0.8  # both classes predicted: a real comparison
    assert data["iou"] == pytest.approx(iou) and data["precision"] == pytest.approx(precision)
    assert data["recall"] == pytest.approx(recall)
    dice = [2 * tp[k] / (np.sum(pred == k) + np.sum(target == k)) for k in (0, 1)]  # F1 = Dice, counted directly
    assert data["f1"] == pytest.approx(dice)
    assert data["mcc"] == pytest.approx(mcc) and data["mcc_per_class"] == pytest.approx([mcc, mcc])
    assert np.sum(data["confusion"]) == target.size
    table = result.output
    assert "IoU" in table and "building" in table and f"{data['iou'][1]:6.4f}" in table and str(out) in table


def test_nodata_pixels_are_not_counted(tmp_path, validation):
    checkpoint, images, labels = validation
    full = evaluate(checkpoint, images, labels, device="cpu", progress=False)
    # Mark every label pixel of one tile as no data (255): exactly that tile's pixels drop out.
    copy = tmp_path / "labels"
    files = tile_files(labels)
    first = next(iter(files))
    for tile, path in files.items():
        target = copy / str(tile.z) / str(tile.x) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    from robosat_effnet.io import write_mask

    label = read_label(files[first])
    write_mask(tile_files(copy)[first], np.full_like(label, 255), ["denim", "orange"])
    partial = evaluate(checkpoint, images, copy, device="cpu", progress=False)
    assert np.sum(full["confusion"]) - np.sum(partial["confusion"]) == label.size


def test_one_vs_rest_mcc_of_a_perfect_and_a_random_prediction():
    assert one_vs_rest_mcc([[5, 0, 0], [0, 3, 0], [0, 0, 2]]) == [1.0, 1.0, 1.0]
    assert one_vs_rest_mcc([[25, 25], [25, 25]]) == [0.0, 0.0]


def test_labels_for_other_tiles_is_one_clear_line(tmp_path, validation):
    checkpoint, images, _ = validation
    (tmp_path / "labels" / "18" / "1").mkdir(parents=True)
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(checkpoint), str(images), str(tmp_path / "labels"),
                                       "--json", str(tmp_path / "e.json"), "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "has a label" in result.output
    assert not (tmp_path / "e.json").exists()
