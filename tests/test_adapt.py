"""`train --unlabelled TILES`: the --weights model's masks of the area's unlabelled tiles join the training set
(self-training, `robosat_effnet.adapt`)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from robosat_effnet.adapt import PSEUDO_SUFFIX, pseudo_labels, self_train
from robosat_effnet.cli import main
from robosat_effnet.config.model import apply_overrides, load_model_config
from robosat_effnet.errors import ConfigError
from robosat_effnet.io import read_label
from robosat_effnet.outputs import read_record
from robosat_effnet.tiles import tile_files

pytestmark = pytest.mark.usefixtures("one_thread")


def test_pseudo_labels_are_the_models_masks_as_labels(trained_run, tmp_path):
    images = trained_run["dataset"].root / "validation" / "images"
    samples = pseudo_labels(trained_run["checkpoint"], images, tmp_path / "pseudo", progress=False)
    assert [s.tile for s in samples] == sorted(tile_files(images))
    result = CliRunner().invoke(main, ["predict", str(images), str(tmp_path / "masks"), "--checkpoint",
                                       str(trained_run["checkpoint"]), "-q"])
    assert result.exit_code == 0, result.output
    predicted = tile_files(tmp_path / "masks")
    for sample in samples:
        assert sample.images == (tile_files(images)[sample.tile],)
        label = read_label(sample.label)
        assert set(np.unique(label)) <= {0, 1}  # class indices only: a label, not a mask with no-data
        assert np.array_equal(label, read_label(predicted[sample.tile]))
    assert sum(int((read_label(s.label) == 1).sum()) for s in samples) > 0


def test_train_with_unlabelled_tiles_trains_on_them_too(trained_run, tmp_path):
    data = trained_run["dataset"]
    unlabelled = data.root / "validation" / "images"
    out = tmp_path / "st"
    result = CliRunner().invoke(main, ["train", "--dataset", str(data.dataset_toml), "--model", str(data.model_toml),
                                       "--weights", str(trained_run["checkpoint"]), "--unlabelled", str(unlabelled),
                                       "--epochs", "1", "--checkpoint-dir", str(out), "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert (out / "last.pth").is_file()
    pseudo = tmp_path / f"st{PSEUDO_SUFFIX}"
    assert sorted(tile_files(pseudo)) == sorted(tile_files(unlabelled))
    # the recipe's second round, from Python: the first round's model labels the same tiles again
    one_epoch = apply_overrides(load_model_config(data.model_toml), epochs=1)
    summary = self_train(data.dataset_toml, one_epoch, unlabelled, weights=out / "last.pth",
                         checkpoint_dir=tmp_path / "st2", device="cpu", progress=False)
    labelled = len(tile_files(data.root / "training" / "images"))
    assert summary["training_tiles"] == labelled + len(tile_files(unlabelled))
    assert (tmp_path / "st2" / "last.pth").is_file()
    first, second = (read_record(tmp_path / f"{name}{PSEUDO_SUFFIX}") for name in ("st", "st2"))
    assert first["checkpoint"] == str(trained_run["checkpoint"].resolve())
    assert second["checkpoint"] == str((out / "last.pth").resolve())  # labels of the first round's model
    assert second["checkpoint_sha256"] != first["checkpoint_sha256"]


def test_without_a_trained_model_it_says_what_to_pass(trained_run, tmp_path):
    data = trained_run["dataset"]
    for weights in (None, "imagenet", data.dataset_toml):
        with pytest.raises(ConfigError, match="--weights CHECKPOINT"):
            self_train(data.dataset_toml, data.model_toml, data.root / "validation" / "images", weights=weights,
                       checkpoint_dir=tmp_path / "x", device="cpu", progress=False)
    result = CliRunner().invoke(main, ["train", "--dataset", str(data.dataset_toml), "--model", str(data.model_toml),
                                       "--unlabelled", str(data.root / "validation" / "images"),
                                       "--checkpoint-dir", str(tmp_path / "y"), "-q"])
    assert result.exit_code == 1 and "--weights CHECKPOINT" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "y").exists()
