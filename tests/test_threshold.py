"""Masks keep a building only where the model is sure enough (`robosat_effnet.threshold`): the same rule in
predict (tiles and a scene), eval and the study, recorded with the outputs, 0 for the plain argmax."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from robosat_effnet.cli import main
from robosat_effnet.data.probabilities import read_probability
from robosat_effnet.io import read_label
from robosat_effnet.threshold import MASK_THRESHOLD, to_classes, to_classes_numpy
from robosat_effnet.tiles import tile_files

pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_doubtful_building_pixel_is_background():
    probs = torch.tensor([[0.35, 0.65], [0.2, 0.8], [0.55, 0.45], [0.1, 0.9]]).T.reshape(1, 2, 2, 2)
    assert to_classes(probs, 0.7).tolist() == [[[0, 1], [0, 1]]]
    assert to_classes(probs, 0.5).tolist() == [[[1, 1], [0, 1]]]
    assert to_classes(probs, 0).tolist() == probs.argmax(1).tolist()
    three = torch.tensor([0.3, 0.25, 0.45]).reshape(1, 3, 1, 1)  # "touching" wins, but only at 0.45
    assert to_classes(three, 0).item() == 2 and to_classes(three, 0.5).item() == 0
    assert MASK_THRESHOLD == 0.7


def test_torch_and_numpy_agree():
    probs = torch.softmax(torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(0)) * 3, dim=1)
    for threshold in (0, 0.4, 0.7):
        ours = to_classes(probs, threshold)
        assert ours.dtype == torch.uint8
        for i in range(3):
            assert np.array_equal(to_classes_numpy(probs[i].numpy(), threshold), ours[i].numpy())


def test_predict_masks_are_the_probability_tiles_above_the_threshold(trained_run, tmp_path):
    checkpoint, images = trained_run["checkpoint"], trained_run["dataset"].root / "validation" / "images"
    assert invoke("predict", images, tmp_path / "probs", "--checkpoint", checkpoint, "--probs",
                  "--quiet").exit_code == 0
    for threshold, name in ((None, "default"), (0.5, "half"), (0.9, "strict")):
        extra = [] if threshold is None else ["--threshold", threshold]
        result = invoke("predict", images, tmp_path / name, "--checkpoint", checkpoint, "--quiet", *extra)
        assert result.exit_code == 0, result.output
    counts = {}
    for name, threshold in (("default", MASK_THRESHOLD), ("half", 0.5), ("strict", 0.9)):
        masks = tile_files(tmp_path / name)
        total = 0
        for tile, path in tile_files(tmp_path / "probs").items():
            p, mask = read_probability(path), read_label(masks[tile])
            clear = np.abs(p - threshold) > 1 / 255  # the tiles hold p rounded to 1/255
            assert np.array_equal(mask[clear] == 1, p[clear] >= threshold)
            total += int((mask == 1).sum())
        counts[name] = total
        record = json.loads((tmp_path / name / ".rs-effnet.json").read_text())
        assert record["settings"]["threshold"] == threshold
    assert counts["half"] >= counts["default"] >= counts["strict"] and counts["half"] > counts["strict"]


def test_a_folder_of_other_threshold_masks_is_not_continued(random_checkpoint, tiles, tmp_path):
    assert invoke("predict", tiles, tmp_path / "m", "--checkpoint", random_checkpoint, "--quiet").exit_code == 0
    result = invoke("predict", tiles, tmp_path / "m", "--checkpoint", random_checkpoint, "--threshold", "0.5",
                    "--quiet")
    assert result.exit_code != 0 and "Traceback" not in result.output  # never two thresholds in one folder
    assert invoke("predict", tiles, tmp_path / "m", "--checkpoint", random_checkpoint, "--quiet").exit_code == 0


def test_eval_scores_the_masks_predict_draws(trained_run, tmp_path):
    data = trained_run["dataset"].root / "validation"
    results = {}
    for threshold in (0.5, MASK_THRESHOLD):
        out = tmp_path / f"eval-{threshold}.json"
        result = invoke("eval", "--checkpoint", trained_run["checkpoint"], data / "images", data / "labels",
                        "--threshold", threshold, "--json", out, "--quiet")
        assert result.exit_code == 0, result.output
        results[threshold] = json.loads(out.read_text())
        assert results[threshold]["mask_threshold"] == threshold
    # fewer building pixels predicted at 0.7: the confusion's building column shrinks, its row does not
    half, strict = (np.array(results[t]["confusion"]) for t in (0.5, MASK_THRESHOLD))
    assert strict[:, 1].sum() < half[:, 1].sum() and np.array_equal(strict.sum(1), half.sum(1))
    assert invoke("eval", "--checkpoint", trained_run["checkpoint"], data / "images", data / "labels",
                  "--threshold", "1").exit_code == 2  # nothing could ever be a building
