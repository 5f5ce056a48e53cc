"""`features MASKS OUT` names classes by what the masks' own record says (`predict` and `rasterize` write it), not by
a dataset.toml that happens to lie in the working folder: the data's record wins over a file beside the user.

Before, 206 buildings came out labelled "parking" and the touching band was not used, because ./dataset.toml of
another project was read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_touching import BOXES, make_project, rasterize

from robosat_effnet.cli import main
from robosat_effnet.models import build_model
from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint
from robosat_effnet.outputs import RECORD

pytest.importorskip("skimage")


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def another_projects_dataset(folder: Path) -> Path:
    """A working folder whose dataset.toml belongs to something else: parking lots and water."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.toml").write_text('[common]\ndataset = "d"\nclasses = ["background", "parking", "water"]\n')
    return folder


def features(masks: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["features", str(masks), str(out), "-q", *extra])


def classes_of(out: Path) -> list[str]:
    return [f["properties"]["class"] for f in json.loads(out.read_text())["features"]]


def test_rasterized_labels_keep_their_classes_and_touching_band_whatever_lies_in_the_folder(project, monkeypatch):
    assert rasterize(project, "band", "three.toml", "--touching-px", "2").exit_code == 0  # records its classes
    monkeypatch.chdir(another_projects_dataset(project / "elsewhere"))
    result = features(project / "band", project / "out.geojson")
    assert result.exit_code == 0, result.output
    assert classes_of(project / "out.geojson") == ["building"] * len(BOXES)  # split by the band, not "parking"


def test_predicted_masks_keep_the_checkpoints_classes(tmp_path, monkeypatch, tiles):
    model = build_model("efficientnet-b0", num_classes=2)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        head.bias[1] += 1000.0  # every pixel a building: the masks are not empty, their name is what counts
    spec = ModelSpec(classes=["background", "building"], colors=["denim", "orange"], tile_size=64)
    checkpoint = save_checkpoint(tmp_path / "model.pth", model, spec)
    masks = tmp_path / "masks"
    result = CliRunner().invoke(main, ["predict", str(tiles), str(masks), "--checkpoint", str(checkpoint),
                                       "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((masks / RECORD).read_text())["settings"]["classes"] == ["background", "building"]
    monkeypatch.chdir(another_projects_dataset(tmp_path / "elsewhere"))
    out = tmp_path / "out.geojson"
    result = features(masks, out)
    assert result.exit_code == 0, result.output
    assert classes_of(out) == ["building"]  # the two neighbouring tiles' buildings, joined across their border
    assert "(1 building)" in result.output and "parking" not in result.output


def test_an_explicit_dataset_still_wins_but_a_disagreement_is_reported(project):
    assert rasterize(project, "band", "three.toml", "--touching-px", "2").exit_code == 0
    result = features(project / "band", project / "out.geojson", "--dataset", str(project / "two.toml"))
    assert result.exit_code == 0, result.output
    assert "warning: " in result.output and "says the masks hold background, building, touching" in result.output
    result = features(project / "band", project / "same.geojson", "--dataset", str(project / "three.toml"))
    assert result.exit_code == 0 and "warning" not in result.output


@pytest.mark.parametrize("record", ["[" * 100000, '{"settings": {"classes": "building"}}', "[]"])
def test_without_a_usable_record_the_working_folders_dataset_is_read_as_before(project, monkeypatch, record):
    assert rasterize(project, "band", "three.toml", "--touching-px", "2").exit_code == 0
    (project / "band" / RECORD).write_text(record)
    monkeypatch.chdir(another_projects_dataset(project / "elsewhere"))
    result = features(project / "band", project / "out.geojson")
    assert result.exit_code == 0, result.output
    assert set(classes_of(project / "out.geojson")) == {"parking", "water"}
