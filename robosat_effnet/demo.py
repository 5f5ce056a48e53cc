"""`make demo`: the whole pipeline on a synthetic town, run as a user would, one public command at a time.

    python -m robosat_effnet.demo demo              # what `make demo` runs; `demo` is the output folder
    python -m robosat_effnet.demo demo --epochs 30  # train on from where the last run stopped

Every step is an `rs-effnet` command run as a subprocess of the installed console script and printed before it
runs (as make does), so the printed lines are a recipe for your own imagery. The demo itself only writes what
those commands cannot: the two TOML configs, the list of whole tiles, the training/validation split and the
overview figure. A step whose outputs exist is skipped (make's rule: it reruns when something it depends on is
newer), and training resumes from last.pth when more epochs are asked for.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from robosat_effnet.errors import ConfigError, RobosatEffnetError

STAMPS = ".steps"  # one file per finished step; its modification time says when the step last ran


@dataclass
class Settings:
    """What the demo builds; the defaults finish in a few minutes on 2 CPU cores."""

    out: Path = Path("demo")
    size: int = 1536  # scene side in px (0.3 m each): 49 z19 tiles, 25 of them whole
    zoom: int = 19  # 256 px tiles at z19 near the equator are 0.30 m/px: the scene's own resolution
    tile_size: int = 256
    epochs: int = 8
    batch_size: int = 2
    lr: float = 0.003
    loss: str = "CrossEntropy"
    warmup: float = 1.0
    validation_every: int = 6  # every 6th whole training tile goes to validation
    seed: int = 0


@dataclass
class Step:
    """One `rs-effnet` command: stale when an output is missing or an input changed after it last ran."""

    name: str
    args: list[Any]  # after the program name
    outputs: list[Path]
    inputs: list[Path] = field(default_factory=list)
    about: str = ""  # the step's heading
    rerun: list[str] = field(default_factory=list)  # extra arguments when redoing a stale step over old outputs
    prepare: Callable[[], str] | None = None  # in-process work before the command; returns a line to print


class DemoError(RobosatEffnetError):
    """A demo step failed; the message names the step and how to continue."""


def write_dataset_toml(path: str | os.PathLike, dataset: str = "dataset") -> Path:
    """Write the demo's dataset.toml (robosat's format, commented) naming the `dataset` folder (relative)."""
    return _write_text(path, f"""\
# rs-effnet demo dataset config, in robosat's dataset.toml format. Relative paths start at this file's folder.

[common]
  # The slippy-map dataset: {dataset}/training/{{images,labels}} and {dataset}/validation/{{images,labels}},
  # each laid out as z/x/y.png.
  dataset = '{dataset}'

  # Class names (label tiles hold their indices) and their mask colours (robosat's names, CSS or '#rrggbb').
  classes = ['background', 'building']
  colors  = ['denim', 'orange']

  # rs-effnet's optional keys, at their defaults:
  # images = ['images']                # image folder(s) per split; several are stacked channel-wise
  # labels = 'labels'                  # label folder per split
  # mean = [0.485, 0.456, 0.406]       # per-channel normalisation of images scaled to 0..1
  # std  = [0.229, 0.224, 0.225]

[weights]
  # Class weights of the CrossEntropy loss: equal here. `rs-effnet weights --dataset dataset.toml` computes
  # robosat's (rare classes weigh more; that trades precision for recall).
  values = [1.0, 1.0]
""")


def write_model_toml(path: str | os.PathLike, settings: Settings, checkpoint: str = "checkpoints") -> Path:
    """Write the demo's model.toml (robosat's keys, then ours) for a from-scratch EfficientNet-B0 U-Net."""
    s = settings
    return _write_text(path, f"""\
# rs-effnet demo model config: robosat's model.toml keys, then rs-effnet's ("ours").
# Options of `rs-effnet train` override it (e.g. --epochs 30).

[common]
  # Tiles per batch: small batches give more optimiser steps in the few minutes a CPU has.
  batch_size = {s.batch_size}
  # Network input side in px (a multiple of 32); the demo's tiles already have it.
  image_size = {s.tile_size}
  # Folder for checkpoints, history.csv and history.png (relative to this file).
  checkpoint = '{checkpoint}'

  # ours: an EfficientNet-B0 encoder with a U-Net decoder.
  backbone = 'efficientnet-b0'
  decoder  = 'unet'
  # ours: random initialisation. 'imagenet' starts from torchvision's weights (downloaded once) and learns
  # faster, but the demo runs without internet access.
  weights = 'none'
  # ours: seed of initial weights, shuffling and augmentation (the same seed gives the same run on CPU).
  seed = {s.seed}
  # ours: data-loading processes; decoding a 256 px PNG is cheap next to a CPU training step.
  workers = 0
  # ours: keep checkpoint-NNNNN.pth every this many epochs (last.pth and best.pth are always written).
  save_every = 4

[opt]
  # Total epochs; raise it (or pass --epochs) and rerun to continue from last.pth.
  epochs = {s.epochs}
  # Peak learning rate (AdamW: linear warm-up, then cosine decay to 0); high, as training starts from scratch.
  lr = {s.lr}
  # robosat's losses: CrossEntropy, mIoU, Focal, Lovasz; ours: Dice.
  loss = '{s.loss}'
  # ours: epochs of linear warm-up, and the 8 flips/rotations of training tiles.
  warmup = {s.warmup}
  augment = true
""")


def whole_tiles(tiles: str | os.PathLike, csv: str | os.PathLike) -> list[Any]:
    """Write the tiles of a `rs-effnet tile` folder that are not in its partial.csv to `csv`; returns them.

    Tiles at a scene's edge are only partly covered: robosat leaves them out of datasets, and so do we.
    """
    from robosat_effnet.tiles import read_tiles_csv, tile_files, write_tiles_csv

    partial_csv = Path(tiles) / "partial.csv"
    partial = set(read_tiles_csv(partial_csv)) if partial_csv.is_file() else set()
    whole = sorted(t for t in tile_files(tiles) if t not in partial)
    if not whole:
        raise DemoError(f"every tile in {tiles} is only partly covered; use a larger scene or a higher zoom")
    write_tiles_csv(csv, whole)
    return whole


def split_tiles(images: str | os.PathLike, labels: str | os.PathLike, dataset: str | os.PathLike,
                every: int = 6, exclude: Sequence[Any] = ()) -> dict[str, int]:
    """Copy image/label pairs into robosat's layout: `dataset`/{training,validation}/{images,labels}/z/x/y.

    Tiles with a label are sorted (z, x, y) and the middle one of every `every` goes to validation, so both
    splits spread over the scene. Tiles in `exclude` are left out. The split folders are replaced, not merged.
    Returns {"training": count, "validation": count}.
    """
    from robosat_effnet.tiles import tile_files, tile_path

    if every < 2:
        raise ConfigError(f"every = {every} would leave no training tiles; use 2 or more")
    image_files, label_files = tile_files(images), tile_files(labels, {".png"})
    tiles = sorted(set(image_files) & set(label_files) - set(exclude))
    if len(tiles) < 2:
        raise ConfigError(f"{len(tiles)} tile(s) with both an image in {images} and a label in {labels}; the "
                          "split needs at least 2: use a larger scene or a higher zoom")
    counts = {"training": 0, "validation": 0}
    for split in counts:
        shutil.rmtree(Path(dataset) / split, ignore_errors=True)
    for i, tile in enumerate(tiles):
        split = "validation" if i % every == every // 2 else "training"
        for kind, source in (("images", image_files[tile]), ("labels", label_files[tile])):
            target = tile_path(Path(dataset) / split / kind, tile, source.suffix.lstrip("."))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        counts[split] += 1
    return counts


def epochs_done(checkpoint: str | os.PathLike) -> int:
    """Epochs a training checkpoint (e.g. last.pth) has finished; 0 when there is none."""
    from robosat_effnet.checkpoint import load_checkpoint

    return int(load_checkpoint(checkpoint).get("epoch", 0)) if Path(checkpoint).is_file() else 0


def is_fresh(step: Step, stamps: str | os.PathLike) -> bool:
    """True when `step` ran after every change to its inputs and all its outputs still exist (make's rule)."""
    stamp = Path(stamps) / step.name
    if not stamp.is_file() or not all(Path(p).exists() for p in step.outputs):
        return False
    newest = max((Path(p).stat().st_mtime for p in step.inputs if Path(p).exists()), default=0.0)
    return stamp.stat().st_mtime >= newest


def mark_done(step: Step, stamps: str | os.PathLike) -> Path:
    """Record that `step` just finished (the stamp holds its command line)."""
    return _write_text(Path(stamps) / step.name, command_line(step.args) + "\n")


def command_line(args: Sequence[Any]) -> str:
    """How a step is printed: `rs-effnet ...`, quoted for a POSIX shell."""
    return shlex.join(["rs-effnet", *map(str, args)])


def run_command(args: Sequence[Any], name: str) -> None:
    """Print the command line, then run the installed `rs-effnet` with it; DemoError naming the step on failure."""
    script = Path(sys.executable).parent / "rs-effnet"  # the venv's console script, else the one on PATH
    program = str(script) if script.is_file() else shutil.which("rs-effnet")
    if not program:
        raise DemoError("the rs-effnet command is not installed; run `make install` (or pip install -e .) first")
    click.echo(f"$ {command_line(args)}")
    sys.stdout.flush()  # before the child writes to the same terminal or file
    code = subprocess.run([program, *map(str, args)]).returncode
    if code != 0:
        raise DemoError(f"step '{name}' failed (exit {code}); fix the problem above and run the demo again: "
                        "finished steps are skipped")


def building_iou(predicted: str | os.PathLike, truth: str | os.PathLike, index: int = 1) -> float:
    """IoU of class `index` between two single-band rasters on the same grid; pixels of 255 (no data) are skipped."""
    import numpy as np
    import rasterio

    from robosat_effnet.colors import NODATA_INDEX

    try:
        with rasterio.open(predicted) as a, rasterio.open(truth) as b:
            pred, true = a.read(1), b.read(1)
    except rasterio.errors.RasterioIOError as e:
        raise DemoError(f"cannot read the masks to compare: {e}") from None
    if pred.shape != true.shape:
        raise DemoError(f"{predicted} is {pred.shape[1]}x{pred.shape[0]} px but {truth} is "
                        f"{true.shape[1]}x{true.shape[0]}; compare masks on the same grid")
    valid = (pred != NODATA_INDEX) & (true != NODATA_INDEX)
    p, t = (pred == index) & valid, (true == index) & valid
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else math.nan


def best_validation(history: str | os.PathLike, name: str = "building") -> dict[str, float]:
    """The history.csv row of the best validation mIoU (what best.pth holds): epoch, mIoU, IoU of `name`."""
    from robosat_effnet.history import read_csv

    rows = [r for r in read_csv(history) if not math.isnan(r.get("val_miou", math.nan))]
    if not rows:
        raise DemoError(f"{history} has no validation results; train again")
    best = max(rows, key=lambda r: r["val_miou"])  # the first of equal rows, as the trainer keeps it
    return {"epoch": int(best["epoch"]), "miou": best["val_miou"], "iou": best.get(f"val_iou_{name}", math.nan),
            "epochs": int(rows[-1]["epoch"])}


def plan(settings: Settings) -> tuple[dict[str, Path], list[Step], list[Step]]:
    """The demo's paths, and its `rs-effnet` steps before and after training (which depends on last.pth)."""
    o, s = settings.out, settings
    p = {"dataset_toml": o / "dataset.toml", "model_toml": o / "model.toml", "dataset": o / "dataset",
         "scenes": o / "scenes", "checkpoints": o / "checkpoints", "eval": o / "eval.json",
         "overview": o / "overview.png", "stamps": o / STAMPS, "predictions": o / "predictions"}
    p.update(best=p["checkpoints"] / "best.pth", last=p["checkpoints"] / "last.pth",
             history=p["checkpoints"] / "history.csv", masks=p["predictions"] / "masks",
             mask_tif=p["predictions"] / "mask.tif", features=p["predictions"] / "buildings.geojson")
    before = [Step("sample", ["sample", p["scenes"], "--size", s.size, "--seed", s.seed],
                   [p["scenes"] / split / name for split in ("train", "test")
                    for name in ("scene.tif", "mask.tif", "buildings.geojson")],
                   about="a synthetic town to train on and another to test on")]
    for split in ("train", "test"):
        scene, tiles, labels = p["scenes"] / split, o / "tiles" / split, o / "labels" / split
        whole = o / "tiles" / f"{split}-whole.csv"
        p.update({f"{split}_scene": scene / "scene.tif", f"{split}_mask": scene / "mask.tif",
                  f"{split}_buildings": scene / "buildings.geojson", f"{split}_tiles": tiles,
                  f"{split}_labels": labels})

        def listing(tiles: Path = tiles, whole: Path = whole) -> str:
            count = len(whole_tiles(tiles, whole))
            return f"{whole}: the {count} whole tiles (those at the edge, in {tiles}/partial.csv, are left out)"

        before += [Step(f"tile-{split}", ["tile", scene / "scene.tif", tiles, "--zoom", s.zoom, "--size", s.tile_size],
                        [tiles / "partial.csv"], [p["stamps"] / "sample"],
                        about=f"the {split} scene into z{s.zoom} slippy-map tiles"),
                   Step(f"rasterize-{split}", ["rasterize", scene / "buildings.geojson", labels, "--tiles", whole,
                                               "--size", s.tile_size, "--dataset", p["dataset_toml"]],
                        [labels, whole], [p["stamps"] / f"tile-{split}"], prepare=listing,
                        about=f"the {split} scene's building outlines into label tiles")]
    after = [Step("predict", ["predict", p["test_scene"], p["masks"], "--checkpoint", p["best"], "--zoom", s.zoom,
                              "--geotiff", p["mask_tif"]], [p["masks"], p["mask_tif"]],
                  [p["stamps"] / "train", p["stamps"] / "sample"], rerun=["--overwrite"],
                  about="the test scene: GeoTIFF in, z/x/y mask tiles and a mask GeoTIFF out"),
             Step("features", ["features", p["masks"], p["features"], "--dataset", p["dataset_toml"],
                               "--class", "building"], [p["features"]], [p["stamps"] / "predict"],
                  about="the predicted masks into building outlines (GeoJSON)"),
             Step("eval", ["eval", p["test_tiles"], p["test_labels"], "--checkpoint", p["best"], "--json", p["eval"]],
                  [p["eval"]], [p["stamps"] / "train", p["stamps"] / "rasterize-test"],
                  about="the model on the test scene's whole tiles against their true labels")]
    return p, before, after


def run_demo(settings: Settings, epochs: int | None = None) -> dict[str, Any]:
    """Run (or finish) the whole demo in `settings.out`; returns the scores and paths it printed.

    `epochs` overrides model.toml's total: more than last.pth has done continues training from there.
    Raises DemoError when a step fails (finished steps are kept and skipped next time).
    """
    began = time.perf_counter()
    p, before, after = plan(settings)
    p["stamps"].mkdir(parents=True, exist_ok=True)
    for path, write in ((p["dataset_toml"], write_dataset_toml), (p["model_toml"], write_model_toml)):
        if path.is_file():
            click.echo(f"keeping {path} (delete it to get the demo's default)")
        else:
            click.echo(f"wrote {write(path, settings) if write is write_model_toml else write(path)}")

    def split() -> str:
        counts = split_tiles(p["train_tiles"], p["train_labels"], p["dataset"], settings.validation_every)
        return f"{counts['training']} training and {counts['validation']} validation tiles in {p['dataset']}"

    steps = [*before, Step("split", [], [p["dataset"] / "training", p["dataset"] / "validation"],
                           [p["stamps"] / "rasterize-train"], "the whole training tiles into training and "
                           "validation", prepare=split),
             Step("train", [], [], about="an EfficientNet-B0 U-Net from scratch"), *after]
    for number, step in enumerate(steps, 1):
        click.secho(f"\n[{number}/{len(steps) + 1}] {step.name}: {step.about}", bold=True)
        started = time.perf_counter()
        if _train(p, epochs) if step.name == "train" else run_step(step, p["stamps"]):
            click.echo(f"({time.perf_counter() - started:.0f} s)")

    validation = best_validation(p["history"])
    scores = json.loads(p["eval"].read_text())
    try:
        test_iou = float(scores["iou"][scores["classes"].index("building")])
    except (KeyError, ValueError, TypeError):
        raise DemoError(f"{p['eval']} has no building IoU; delete it and run the demo again") from None
    mask_iou = building_iou(p["mask_tif"], p["test_mask"])
    click.secho(f"\n[{len(steps) + 1}/{len(steps) + 1}] overview: the test scene with predicted and true "
                "outlines, and the training curves", bold=True)
    from robosat_effnet.overview import plot_overview

    plot_overview(p["test_scene"], p["features"], p["test_buildings"], p["history"], p["overview"], iou=test_iou,
                  title=f"rs-effnet demo: EfficientNet-B0 U-Net trained from scratch for {validation['epochs']} "
                  "epochs, on a test town it has not seen")
    minutes = (time.perf_counter() - began) / 60
    click.echo("\n".join([
        f"wrote {p['overview']}", "",
        f"validation IoU (building): {validation['iou']:.3f}   mIoU {validation['miou']:.3f}, epoch "
        f"{validation['epoch']} of {validation['epochs']} ({p['best']})",
        f"test IoU (building):       {test_iou:.3f}   `rs-effnet eval` on the test scene's {scores.get('tiles')} "
        "whole tiles",
        f"                           {mask_iou:.3f}   {p['mask_tif']} against the true {p['test_mask']}, "
        "the whole scene pixel by pixel", "",
        "outputs:",
        f"  {p['scenes']}/{{train,test}}/  synthetic scenes: scene.tif, mask.tif (true buildings), buildings.geojson",
        f"  {p['train_tiles'].parent}/, {p['train_labels'].parent}/  z/x/y image and label tiles of both scenes",
        f"  {p['dataset']}/  the training/validation split; configs {p['dataset_toml']}, {p['model_toml']}",
        f"  {p['checkpoints']}/  best.pth, last.pth, checkpoint-NNNNN.pth, history.csv, history.png",
        f"  {p['masks']}/  predicted z/x/y mask tiles of the test scene",
        f"  {p['mask_tif']}  predicted mask on the test scene's own grid",
        f"  {p['features']}  predicted building outlines (lon/lat)",
        f"  {p['eval']}  test metrics and confusion matrix",
        f"  {p['overview']}  the picture",
        f"done in {minutes:.1f} min; run it again to reuse all this, or with --epochs N to train longer",
    ]))
    return {"validation": validation, "test_iou": test_iou, "mask_iou": mask_iou, "minutes": minutes, "paths": p}


def run_step(step: Step, stamps: str | os.PathLike) -> bool:
    """Run a step unless it is fresh (then say so). A step that ran before reruns with `step.rerun` added,
    or, without those, after its output folders are removed.

    Returns True when it ran. The stamp is written only after success, so a failed step reruns next time.
    """
    if is_fresh(step, stamps):
        more = f" and {len(step.outputs) - 2} more" if len(step.outputs) > 2 else ""
        click.echo(f"up to date: {', '.join(map(str, step.outputs[:2]))}{more}")
        return False
    if step.prepare is not None:
        click.echo(step.prepare())
    if step.args:
        stale = (Path(stamps) / step.name).is_file()  # it ran before: its old outputs must be redone
        for folder in [] if step.rerun or not stale else [o for o in step.outputs if Path(o).is_dir()]:
            shutil.rmtree(folder)  # no leftovers (e.g. tiles another zoom made) mix with the new ones
        run_command(step.args + (step.rerun if stale else []), step.name)
    mark_done(step, stamps)
    return True


def _train(p: dict[str, Path], epochs: int | None) -> bool:
    """Train, resume from last.pth, or skip when it has the epochs asked for; True when it ran."""
    from robosat_effnet.config import load_model_config

    wanted = epochs or load_model_config(p["model_toml"]).epochs
    done = epochs_done(p["last"])
    if done >= wanted and p["best"].is_file() and p["history"].is_file():
        click.echo(f"up to date: {p['last']} has {done} of {wanted} epochs (pass --epochs N to train longer)")
        return False
    args: list[Any] = ["train", "--dataset", p["dataset_toml"], "--model", p["model_toml"]]
    if epochs:
        args += ["--epochs", epochs]
    if done:
        click.echo(f"resuming: {p['last']} has {done} of {wanted} epochs")
        args += ["--resume", p["last"]]
    run_command(args, "train")
    mark_done(Step("train", args, []), p["stamps"])  # predict and eval depend on this stamp
    return True


def _write_text(path: str | os.PathLike, text: str) -> Path:
    from robosat_effnet.io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path), default="demo")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Total training epochs (default: model.toml's); more than last time continues training.")
def main(out: Path, epochs: int | None) -> None:
    """Run the whole rs-effnet pipeline on a synthetic town into OUT (default: demo), reusing what is there."""
    from robosat_effnet.cli.options import reports_errors

    reports_errors(run_demo)(Settings(out=out), epochs)


if __name__ == "__main__":
    main()
