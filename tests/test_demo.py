"""The demo's pieces, cheaply: configs, split, make-style skipping, resume, IoU and the overview figure.

The full demo (minutes of training) is not run here; `make demo` is its test.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from PIL import Image
from rasterio.features import rasterize
from shapely.geometry import Polygon

from robosat_effnet.config import load_dataset_config, load_model_config
from robosat_effnet.data.synthetic import write_sample
from robosat_effnet.demo import run as demo
from robosat_effnet.demo.overview import outline_segments, plot_overview, read_scene
from robosat_effnet.io import read_label, write_image, write_mask
from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint
from robosat_effnet.tiles import tile_path
from robosat_effnet.training.datasets import find_samples
from robosat_effnet.training.history import write_csv


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    """A small synthetic scene (256 px, 0.3 m/px) with buildings."""
    return write_sample(tmp_path_factory.mktemp("scene"), seed=3, size=256)


def test_configs_are_robosat_tomls_that_load(tmp_path):
    settings = demo.Settings(out=tmp_path, epochs=7, batch_size=3, lr=0.004, tile_size=256, warmup=0.5)
    dataset = load_dataset_config(demo.write_dataset_toml(tmp_path / "dataset.toml"))
    model = load_model_config(demo.write_model_toml(tmp_path / "model.toml", settings))
    assert dataset.dataset == (tmp_path / "dataset").resolve()  # relative to the file
    assert dataset.classes == ["background", "building"] and dataset.colors == ["denim", "orange"]
    assert dataset.weights == [1.0, 1.0]
    assert (model.epochs, model.batch_size, model.lr, model.image_size, model.warmup) == (7, 3, 0.004, 256, 0.5)
    assert (model.workers, model.save_every, model.keep, model.loss, model.augment) == (0, 4, 1, "CrossEntropy", True)
    assert model.checkpoint == (tmp_path / "checkpoints").resolve()
    assert model.weights == "imagenet" and model.backbone == "efficientnet-lite0" and model.decoder == "unet"
    # robosat's own keys sit where robosat looks for them.
    raw = tomllib.loads((tmp_path / "model.toml").read_text())
    assert {"batch_size", "image_size", "checkpoint"} <= set(raw["common"])
    assert {"epochs", "lr", "loss"} <= set(raw["opt"])
    assert tomllib.loads((tmp_path / "dataset.toml").read_text())["common"]["classes"] == ["background", "building"]


def _tiles(root: Path, tiles: list[mercantile.Tile], labels: bool) -> None:
    rng = np.random.default_rng(0)
    for tile in tiles:
        if labels:
            write_mask(tile_path(root, tile, "png"), (rng.random((64, 64)) > 0.5).astype(np.uint8),
                       ["denim", "orange"])
        else:
            write_image(tile_path(root, tile, "png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))


def test_split_tiles_makes_robosat_layout(tmp_path):
    tiles = list(mercantile.tiles(32.58, 0.34, 32.59, 0.35, zooms=[17]))
    assert len(tiles) >= 8
    _tiles(tmp_path / "images", tiles, labels=False)
    _tiles(tmp_path / "labels", tiles[:-1], labels=True)  # the last tile has no label
    excluded = tiles[:2]
    counts = demo.split_tiles(tmp_path / "images", tmp_path / "labels", tmp_path / "dataset", every=3,
                              exclude=excluded)
    usable = sorted(tiles[2:-1])
    assert counts == {"validation": len(usable[1::3]), "training": len(usable) - len(usable[1::3])}
    config = load_dataset_config(demo.write_dataset_toml(tmp_path / "dataset.toml"))
    val = find_samples(config, "validation")
    train = find_samples(config, "training")
    assert sorted(s.tile for s in val) == usable[1::3]
    assert sorted(s.tile for s in train + val) == usable
    # Labels are copied unchanged.
    sample = val[0]
    np.testing.assert_array_equal(read_label(sample.label), read_label(tile_path(tmp_path / "labels", sample.tile,
                                                                                 "png")))
    # A second split replaces the first.
    demo.split_tiles(tmp_path / "images", tmp_path / "labels", tmp_path / "dataset", every=2)
    assert len(find_samples(config, "validation")) == len(tiles[:-1]) // 2


def test_split_tiles_refuses_too_few(tmp_path):
    tile = mercantile.Tile(1, 1, 2)
    _tiles(tmp_path / "images", [tile], labels=False)
    _tiles(tmp_path / "labels", [tile], labels=True)
    with pytest.raises(demo.ConfigError, match="at least 2"):
        demo.split_tiles(tmp_path / "images", tmp_path / "labels", tmp_path / "dataset")


def test_steps_are_fresh_until_an_input_changes(tmp_path):
    stamps, output, upstream = tmp_path / ".steps", tmp_path / "out.txt", tmp_path / "in.txt"
    upstream.write_text("x")
    step = demo.Step("thing", ["features", "a b"], [output], [upstream])
    assert not demo.is_fresh(step, stamps)  # never ran
    output.write_text("y")
    assert demo.mark_done(step, stamps).read_text() == "rs-effnet features 'a b'\n"
    assert demo.is_fresh(step, stamps)
    later = (stamps / "thing").stat().st_mtime + 10
    os.utime(upstream, (later, later))  # the input changed after the step ran
    assert not demo.is_fresh(step, stamps)
    demo.mark_done(step, stamps)
    os.utime(stamps / "thing", (later + 1, later + 1))
    assert demo.is_fresh(step, stamps)
    output.unlink()  # an output went missing
    assert not demo.is_fresh(step, stamps)


def test_rerun_of_a_stale_step_adds_overwrite(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(demo, "run_command", lambda args, name: ran.append(list(args)))
    step = demo.Step("predict", ["predict", "x"], [tmp_path / "masks"], rerun=["--overwrite"])
    assert demo.run_step(step, tmp_path)
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "old.png").write_text("")
    assert not demo.run_step(step, tmp_path)  # fresh: nothing runs
    os.utime(tmp_path / "predict", (1, 1))
    step.inputs = [tmp_path / "masks"]  # now newer than the stamp
    assert demo.run_step(step, tmp_path)
    assert ran == [["predict", "x"], ["predict", "x", "--overwrite"]]
    assert (tmp_path / "masks" / "old.png").exists()  # --overwrite redoes them in place


def test_rerun_of_a_stale_step_without_rerun_args_clears_its_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "run_command", lambda args, name: None)
    folder, upstream = tmp_path / "tiles", tmp_path / "upstream"
    step = demo.Step("tile", ["tile", "x"], [folder], [upstream])
    demo.run_step(step, tmp_path / "stamps")
    folder.mkdir()
    (folder / "z17.png").write_text("")  # e.g. a tile another zoom made
    upstream.write_text("")
    os.utime(tmp_path / "stamps" / "tile", (1, 1))
    assert demo.run_step(step, tmp_path / "stamps")
    assert not folder.exists()


def test_prepare_runs_in_process_before_the_command(tmp_path, monkeypatch):
    order = []
    monkeypatch.setattr(demo, "run_command", lambda args, name: order.append("command"))
    step = demo.Step("split", [], [tmp_path / "never"], prepare=lambda: order.append("prepare") or "split done")
    assert demo.run_step(step, tmp_path)
    assert order == ["prepare"]  # no arguments: no command
    step = demo.Step("rasterize", ["rasterize"], [tmp_path / "never"], prepare=lambda: order.append("csv") or "")
    demo.run_step(step, tmp_path)
    assert order == ["prepare", "csv", "command"]


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """The demo's paths with model.toml (epochs 5) and a fake last.pth; run_command records instead of running."""
    from torch import nn

    paths = demo.plan(demo.Settings(out=tmp_path, epochs=5))[0]
    demo.write_model_toml(paths["model_toml"], demo.Settings(out=tmp_path, epochs=5))
    paths["stamps"].mkdir(parents=True)
    ran = []
    monkeypatch.setattr(demo, "run_command", lambda args, name: ran.append([str(a) for a in args]))

    def checkpoint(epoch: int) -> None:
        save_checkpoint(paths["last"], nn.Linear(1, 1), ModelSpec(), epoch=epoch)
        for name in ("best", "history"):
            paths[name].write_text("x")

    return paths, ran, checkpoint


def test_train_starts_fresh_without_last(trained):
    paths, ran, _ = trained
    assert demo._train(paths, None)
    assert ran == [["train", "--dataset", str(paths["dataset_toml"]), "--model", str(paths["model_toml"])]]
    assert (paths["stamps"] / "train").is_file()  # predict and eval depend on it


def test_train_resumes_from_last_and_skips_when_done(trained):
    paths, ran, checkpoint = trained
    checkpoint(3)
    assert demo.epochs_done(paths["last"]) == 3
    demo._train(paths, None)
    assert ran[-1][-2:] == ["--resume", str(paths["last"])]
    checkpoint(5)
    ran.clear()
    assert not demo._train(paths, None)  # 5 of 5 epochs: nothing to do
    assert ran == []
    demo._train(paths, 8)  # more epochs asked for: continue
    assert ran == [["train", "--dataset", str(paths["dataset_toml"]), "--model", str(paths["model_toml"]),
                    "--epochs", "8", "--resume", str(paths["last"])]]


def test_epochs_done_without_checkpoint(tmp_path):
    assert demo.epochs_done(tmp_path / "last.pth") == 0


def test_building_iou_against_numpy(tmp_path):
    rng = np.random.default_rng(1)
    pred = rng.integers(0, 2, (40, 50)).astype(np.uint8)
    true = rng.integers(0, 2, (40, 50)).astype(np.uint8)
    true[:5] = 255  # no-data rows are not counted
    for name, array in (("pred.tif", pred), ("true.tif", true)):
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=50, height=40, count=1, dtype="uint8",
                           crs="EPSG:3857", transform=Affine(0.3, 0, 0, 0, -0.3, 0)) as dst:
            dst.write(array, 1)
    p, t = pred[5:] == 1, true[5:] == 1
    expected = (p & t).sum() / (p | t).sum()
    assert demo.building_iou(tmp_path / "pred.tif", tmp_path / "true.tif") == pytest.approx(expected)


def test_best_validation_picks_best_miou(tmp_path):
    rows = [{"epoch": e, "val_miou": m, "val_iou_building": b} for e, m, b in [(1, 0.4, 0.1), (2, 0.8, 0.7),
                                                                              (3, 0.7, 0.6)]]
    best = demo.best_validation(write_csv(rows, tmp_path / "history.csv"))
    assert best == {"epoch": 2, "miou": 0.8, "iou": 0.7, "epochs": 3}


def test_outlines_land_on_the_true_mask(scene):
    """GeoJSON (lon/lat) -> scene pixels, checked by rasterising the rings against the scene's own mask."""
    image, transform, crs = read_scene(scene["scene"], max_side=256)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    rings = outline_segments(scene["buildings"], crs, transform)
    assert rings
    drawn = rasterize([(Polygon(r), 1) for r in rings], out_shape=(256, 256))
    with rasterio.open(scene["mask"]) as src:
        true = src.read(1)
    assert (drawn & true).sum() / (drawn | true).sum() > 0.95


def test_plot_overview_writes_png(scene, tmp_path):
    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_miou": 0.3 * e, "val_iou_building": 0.2 * e}
            for e in (1, 2, 3)]
    history = write_csv(rows, tmp_path / "history.csv")
    out = plot_overview(scene["scene"], scene["buildings"], scene["buildings"], history, tmp_path / "o" / "ov.png",
                        iou=0.5, max_side=128, dpi=50)
    with Image.open(out) as png:
        assert png.format == "PNG" and png.width > png.height > 200
    no_curves = plot_overview(scene["scene"], scene["buildings"], scene["buildings"], None, tmp_path / "n.png", dpi=30)
    assert no_curves.is_file()


def test_outline_segments_rejects_bad_geojson(scene, tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    _, transform, crs = read_scene(scene["scene"])
    with pytest.raises(demo.RobosatEffnetError, match="bad.geojson"):
        outline_segments(bad, crs, transform)


def test_cli_usage_errors_exit_2():
    result = CliRunner().invoke(demo.main, ["somewhere", "--epochs", "0"])
    assert result.exit_code == 2


def test_cli_help_names_the_output_folder():
    result = CliRunner().invoke(demo.main, ["--help"])
    assert result.exit_code == 0 and "OUT" in result.output and "--epochs" in result.output


def test_whole_tiles_leaves_out_partial_ones(tmp_path):
    from robosat_effnet.tiles import read_tiles_csv, write_tiles_csv

    tiles = sorted(mercantile.tiles(32.58, 0.34, 32.59, 0.35, zooms=[17]))
    _tiles(tmp_path / "tiles", tiles, labels=False)
    write_tiles_csv(tmp_path / "tiles" / "partial.csv", tiles[1:3])
    whole = demo.whole_tiles(tmp_path / "tiles", tmp_path / "whole.csv")
    assert whole == [tiles[0], *tiles[3:]]
    assert read_tiles_csv(tmp_path / "whole.csv") == whole  # robosat's x,y,z rows
    write_tiles_csv(tmp_path / "tiles" / "partial.csv", tiles)
    with pytest.raises(demo.DemoError, match="partly covered"):
        demo.whole_tiles(tmp_path / "tiles", tmp_path / "whole.csv")


def test_printed_commands_are_the_public_ones(tmp_path):
    paths, before, after = demo.plan(demo.Settings(out=tmp_path))
    names = [step.args[0] for step in before + after]
    assert names == ["sample", "tile", "rasterize", "tile", "rasterize", "predict", "features", "eval", "view"]
    lines = [demo.command_line(step.args) for step in before + after]
    assert lines[0] == f"rs-effnet sample {tmp_path}/scenes --size 1536 --seed 0"
    assert lines[2] == (f"rs-effnet rasterize {tmp_path}/scenes/train/buildings.geojson {tmp_path}/labels/train "
                        f"--tiles {tmp_path}/tiles/train-whole.csv --size 256 --dataset {tmp_path}/dataset.toml")
    assert "--geotiff" in lines[5] and "--zoom 19" in lines[5]
