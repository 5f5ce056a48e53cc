"""Every command that reads a folder carrying our record (`.rs-effnet.json`, written by `rasterize` and `predict`)
checks the classes it names against the classes the command uses, and warns once when they differ:

    features MASKS --dataset     the masks' record     against --dataset's classes
    eval IMAGES LABELS           the labels' record    against the checkpoint's classes
    train (and study)            each split's labels   against dataset.toml's classes
    weights                      training/labels       against dataset.toml's classes
    view --masks --dataset       the masks' record     against --dataset's classes

Class indices are all a label tile holds; another list of names means the indices mean other things, and the
scores, weights or names come out wrong without a word.
"""

from __future__ import annotations

import json
from pathlib import Path

import mercantile
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import make_dataset
from robosat_effnet.cli import main
from robosat_effnet.io import write_image, write_mask
from robosat_effnet.outputs import RECORD, make_record
from robosat_effnet.tiles import tile_path

pytestmark = pytest.mark.usefixtures("one_thread")
TILES = [mercantile.Tile(70760 + i, 104110, 18) for i in range(2)]
OTHER = ["background", "parking", "water"]


def write_tiles(root: Path, labels: bool) -> Path:
    for i, tile in enumerate(TILES):
        if labels:
            mask = np.zeros((32, 32), np.uint8)
            mask[4:20, 4:20] = 1
            write_mask(tile_path(root, tile, "png"), mask, ["denim", "orange"])
        else:
            write_image(tile_path(root, tile, "png"), np.random.default_rng(i).integers(0, 255, (32, 32, 3),
                                                                                           dtype=np.uint8))
    return root


def dataset_toml(path: Path, classes: list[str]) -> Path:
    path.write_text(f'[common]\ndataset = "d"\nclasses = {json.dumps(classes)}\n')
    return path


def record(folder: Path, classes: list[str]) -> Path:
    (folder / RECORD).write_text(json.dumps(make_record("rasterize", folder, {"classes": classes})))
    return folder / RECORD


def _features(tmp: Path, ckpt: Path, classes: list[str]):
    masks = write_tiles(tmp / "masks", labels=True)
    args = ["features", masks, tmp / "out.geojson", "--dataset", dataset_toml(tmp / "ds.toml", classes), "-q"]
    return masks, args, str(tmp / "ds.toml")


def _eval(tmp: Path, ckpt: Path, classes: list[str]):
    labels = write_tiles(tmp / "labels", labels=True)
    return labels, ["eval", "--checkpoint", ckpt, write_tiles(tmp / "images", False), labels, "-q", "--device",
                    "cpu"], f"checkpoint {ckpt}"


def _view(tmp: Path, ckpt: Path, classes: list[str]):
    masks = write_tiles(tmp / "masks", labels=True)
    return masks, ["view", write_tiles(tmp / "images", False), "--masks", masks, "--dataset",
                   dataset_toml(tmp / "ds.toml", classes), "--no-serve", "--out", tmp / "page", "--quiet"], \
        str(tmp / "ds.toml")


def _dataset(tmp: Path, classes: list[str]):
    data = make_dataset(tmp, n_train=2, n_val=2, size=32, model={"batch_size": 2, "epochs": 1},
                        dataset={"classes": classes})
    return data


def _train(tmp: Path, ckpt: Path, classes: list[str]):
    data = _dataset(tmp, classes)
    return data.root / "validation" / "labels", ["train", "--dataset", data.dataset_toml, "--model",
                                                 data.model_toml, "--device", "cpu", "--quiet"], \
        str(data.dataset_toml)


def _weights(tmp: Path, ckpt: Path, classes: list[str]):
    data = _dataset(tmp, classes)
    return data.root / "training" / "labels", ["weights", "--dataset", data.dataset_toml, "-q"], \
        str(data.dataset_toml)


# command -> (tmp, checkpoint, the classes the command uses) -> (the folder that gets a record, args, source)
COMMANDS = {"features --dataset": _features, "eval": _eval, "view --masks --dataset": _view, "train": _train,
            "weights": _weights}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("same", [False, True], ids=["other classes", "same classes"])
def test_a_folders_record_naming_other_classes_is_one_warning(tmp_path, random_checkpoint, command, same):
    uses = ["background", "foreground"] if command == "eval" else ["background", "building"]  # eval: the checkpoint's
    folder, args, source = COMMANDS[command](tmp_path, random_checkpoint, uses)
    path = record(folder, uses if same else OTHER)
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:") and RECORD in line]
    if same:
        assert warnings == []
    else:
        assert len(warnings) == 1, result.output
        what = "masks" if command.startswith(("features", "view")) else "labels"
        assert f"{source} names the classes {', '.join(uses)} but {path} says the {what} hold {', '.join(OTHER)}" \
            in warnings[0]
