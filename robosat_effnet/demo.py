"""`make demo`: the whole pipeline on a synthetic town, run as a user would, one public command at a time.

    python -m robosat_effnet.demo demo              # what `make demo` runs; `demo` is the output folder
    python -m robosat_effnet.demo demo --epochs 30  # train on from where the last run stopped

Every step is an `rs-effnet` command run as a subprocess of the installed console script and printed before it
runs (as make does), so the printed lines are a recipe for your own imagery. The demo writes only what those
commands cannot: the two TOML configs, the split of the training tiles into training and validation, and the
overview figure. Steps whose outputs exist are skipped (make-style: a step reruns when something it depends on
is newer), and training resumes from last.pth when more epochs are asked for.
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
from typing import Any, Sequence

import click

from robosat_effnet.errors import ConfigError, RobosatEffnetError

CLASSES = ("background", "building")
COLORS = ("denim", "orange")
STEPS_DIR = ".steps"  # one stamp file per finished step; its time says when the step last ran


@dataclass
class Settings:
    """What the demo builds; the defaults finish in under 10 minutes on 2 CPU cores."""

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
    args: list[str]  # after the program name
    outputs: list[Path]
    inputs: list[Path] = field(default_factory=list)
    rerun: list[str] = field(default_factory=list)  # extra arguments when redoing a stale step over old outputs
    about: str = ""  # one line for the step's heading


class DemoError(RobosatEffnetError):
    """A demo step failed; the message names the step and how to continue."""


def write_dataset_toml(path: str | os.PathLike, dataset: str = "dataset") -> Path:
    """Write the demo's dataset.toml (robosat's format, commented) naming the `dataset` folder (relative)."""
    text = f"""\
# rs-effnet demo dataset config: robosat's dataset.toml format (robosat reads it unchanged).
# Relative paths are relative to this file's folder.

[common]
  # The slippy-map dataset: {dataset}/training/{{images,labels}} and {dataset}/validation/{{images,labels}},
  # each laid out as z/x/y.png.
  dataset = '{dataset}'

  # Class names; the label tiles hold their indices (0 = background).
  classes = {_toml_list(CLASSES)}

  # Mask colours per class (robosat's colour names, CSS names or '#rrggbb').
  colors  = {_toml_list(COLORS)}

  # --- rs-effnet's optional keys, at their defaults ---
  # images = ['images']                # image folder(s) per split; several are stacked channel-wise
  # labels = 'labels'                  # label folder per split
  # mean = [0.485, 0.456, 0.406]       # per-channel normalisation of images scaled to 0..1
  # std  = [0.229, 0.224, 0.225]

# No [weights]: the CrossEntropy loss then weighs both classes equally (buildings cover ~15% of the town).
# `rs-effnet weights --dataset dataset.toml` prints robosat's class weights to add here.
"""
    return _write_text(path, text)


def write_model_toml(path: str | os.PathLike, settings: Settings, checkpoint: str = "checkpoints") -> Path:
    """Write the demo's model.toml (robosat's keys, then ours) for a from-scratch EfficientNet-B0 U-Net."""
    s = settings
    text = f"""\
# rs-effnet demo model config: robosat's model.toml keys first, then rs-effnet's.
# Command-line options of `rs-effnet train` override it (e.g. --epochs 30).

[common]
  # Tiles per batch: small batches mean more optimiser steps in the few minutes a CPU has.
  batch_size = {s.batch_size}

  # Network input side in px; the demo's tiles are already this size.
  image_size = {s.tile_size}

  # Where checkpoints, history.csv and history.png go (relative to this file).
  checkpoint = '{checkpoint}'

  # ours: EfficientNet-B0 encoder with a U-Net decoder.
  backbone = 'efficientnet-b0'
  decoder  = 'unet'

  # ours: random initialisation. `weights = 'imagenet'` starts from torchvision's ImageNet weights
  # (downloaded once) and learns faster, but the demo must run without internet access.
  weights = 'none'

  # ours: seed of initial weights, shuffling and augmentation (the same seed gives the same run on CPU).
  seed = {s.seed}

  # ours: data-loading worker processes; decoding 256 px PNGs is cheap next to a CPU training step.
  workers = 0

  # ours: keep checkpoint-NNNNN.pth only every this many epochs (last.pth and best.pth are always written).
  save_every = 4

[opt]
  # Total epochs; raise it (or pass --epochs) and rerun to continue from last.pth.
  epochs = {s.epochs}

  # Peak learning rate (AdamW: linear warm-up, then cosine decay to 0). High because training starts
  # from scratch and has few steps.
  lr = {s.lr}

  # robosat's loss names: CrossEntropy, mIoU, Focal, Lovasz; ours: Dice.
  loss = '{s.loss}'

  # ours: epochs of linear warm-up.
  warmup = {s.warmup}

  # ours: the 8 flips/rotations of each training tile.
  augment = true
"""
    return _write_text(path, text)


def split_tiles(images: str | os.PathLike, labels: str | os.PathLike, dataset: str | os.PathLike,
                every: int = 6, exclude: Sequence[Any] = ()) -> dict[str, int]:
    """Copy image/label tile pairs into robosat's dataset layout: `dataset`/{training,validation}/{images,labels}.

    Tiles are sorted (z, x, y) and every `every`-th one goes to validation, so both splits cover the whole
    scene. Tiles in `exclude` (e.g. the partly covered ones from partial.csv) and tiles without a label are
    left out. Returns {"training": n, "validation": n}. The folders are replaced, not merged.
    """
    from robosat_effnet.tiles import tile_files, tile_path

    if every < 2:
        raise ConfigError(f"every = {every} would leave no training tiles; use 2 or more")
    image_files, label_files = tile_files(images), tile_files(labels, {".png"})
    skip = set(exclude)
    tiles = sorted(t for t in image_files if t in label_files and t not in skip)
    if len(tiles) < 2:
        raise ConfigError(f"{len(tiles)} whole tile(s) with labels in {images} and {labels}; the split needs at "
                          "least 2: use a larger scene or a higher zoom")
    root = Path(dataset)
    counts = {"training": 0, "validation": 0}
    for split in counts:
        shutil.rmtree(root / split, ignore_errors=True)
    for i, tile in enumerate(tiles):
        # The middle of each group of `every`, so the validation tiles are not all at the scene's edges.
        split = "validation" if i % every == every // 2 else "training"
        for kind, source in (("images", image_files[tile]), ("labels", label_files[tile])):
            target = tile_path(root / split / kind, tile, source.suffix.lstrip("."))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        counts[split] += 1
    return counts


def epochs_done(checkpoint: str | os.PathLike) -> int:
    """Epochs a training checkpoint (e.g. last.pth) has finished; 0 when there is none."""
    from robosat_effnet.checkpoint import load_checkpoint

    path = Path(checkpoint)
    return int(load_checkpoint(path).get("epoch", 0)) if path.is_file() else 0


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


def command_line(args: Sequence[str]) -> str:
    """How a step is printed: `rs-effnet ...`, quoted for a POSIX shell."""
    return shlex.join(["rs-effnet", *map(str, args)])


def rs_effnet() -> str:
    """The installed `rs-effnet` console script next to this Python (the venv's), else the one on PATH."""
    script = Path(sys.executable).parent / "rs-effnet"
    found = str(script) if script.is_file() else shutil.which("rs-effnet")
    if not found:
        raise DemoError("the rs-effnet command is not installed; run `make install` (or pip install -e .) first")
    return found


def run_command(args: Sequence[str], name: str) -> None:
    """Print the command line, then run it; raise DemoError naming the step if it fails."""
    click.echo(f"$ {command_line(args)}", err=False)
    sys.stdout.flush()
    code = subprocess.run([rs_effnet(), *map(str, args)]).returncode
    if code != 0:
        raise DemoError(f"step '{name}' failed (exit {code}); fix the problem above and run the demo again: "
                        "finished steps are skipped")


def building_iou(predicted: str | os.PathLike, truth: str | os.PathLike, index: int = 1) -> float:
    """IoU of class `index` between two single-band masks on the same grid (e.g. GeoTIFFs); no-data is skipped."""
    import numpy as np

    from robosat_effnet.colors import NODATA_INDEX

    pred, true = _read_band(predicted), _read_band(truth)
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


def plan(settings: Settings) -> dict[str, Any]:
    """The demo's paths and its `rs-effnet` steps (train excepted: it depends on what last.pth holds)."""
    o, s = settings.out, settings
    p = {name: o / rel for name, rel in {
        "scenes": "scenes", "dataset_toml": "dataset.toml", "model_toml": "model.toml", "dataset": "dataset",
        "checkpoints": "checkpoints", "predictions": "predictions", "eval": "eval.json",
        "overview": "overview.png", "stamps": STEPS_DIR}.items()}
    for split in ("train", "test"):
        p[f"{split}_scene"] = o / "scenes" / split / "scene.tif"
        p[f"{split}_buildings"] = o / "scenes" / split / "buildings.geojson"
        p[f"{split}_tiles"], p[f"{split}_labels"] = o / "tiles" / split, o / "labels" / split
    p.update(masks=p["predictions"] / "masks", mask_tif=p["predictions"] / "mask.tif",
             features=p["predictions"] / "buildings.geojson", best=p["checkpoints"] / "best.pth",
             last=p["checkpoints"] / "last.pth", history=p["checkpoints"] / "history.csv")
    stamp = lambda name: p["stamps"] / name  # noqa: E731 - a step's stamp is the next step's input
    steps = [Step("sample", ["sample", p["scenes"], "--size", s.size, "--seed", s.seed],
                  [p["train_scene"], p["test_scene"], p["train_buildings"], p["test_buildings"]],
                  about="a synthetic town to train on and a second one to test on")]
    for split in ("train", "test"):
        steps.append(Step(f"tile-{split}", ["tile", p[f"{split}_scene"], p[f"{split}_tiles"], "--zoom", s.zoom,
                                            "--size", s.tile_size], [p[f"{split}_tiles"]], [stamp("sample")],
                          about=f"the {split} scene into z{s.zoom} slippy-map tiles"))
        steps.append(Step(f"rasterize-{split}", ["rasterize", p[f"{split}_buildings"], p[f"{split}_labels"],
                                                 "--tiles", p[f"{split}_tiles"], "--dataset", p["dataset_toml"]],
                          [p[f"{split}_labels"]], [stamp(f"tile-{split}")],
                          about=f"the {split} scene's building outlines into label tiles"))
    later = [Step("predict", ["predict", p["test_scene"], p["masks"], "--checkpoint", p["best"], "--zoom", s.zoom,
                              "--geotiff", p["mask_tif"]], [p["masks"], p["mask_tif"]],
                  [stamp("train"), stamp("sample")], rerun=["--overwrite"],
                  about="the test scene: GeoTIFF in, mask tiles and a mask GeoTIFF out"),
             Step("features", ["features", p["masks"], p["features"], "--dataset", p["dataset_toml"],
                               "--class", "building"], [p["features"]], [stamp("predict")],
                  about="predicted masks into building outlines (GeoJSON)"),
             Step("eval", ["eval", p["test_tiles"], p["test_labels"], "--checkpoint", p["best"], "--json", p["eval"]],
                  [p["eval"]], [stamp("train"), stamp("rasterize-test")],
                  about="the model on the test scene's tiles against its true labels")]
    return {"paths": p, "steps": steps, "later": later}


def run_demo(settings: Settings, epochs: int | None = None) -> dict[str, Any]:
    """Run (or finish) the whole demo into `settings.out`; returns the scores and paths it printed.

    `epochs` overrides model.toml's total: a larger number continues training from last.pth.
    Raises DemoError when a step fails (finished steps are kept and skipped next time).
    """
    began = time.perf_counter()
    work = plan(settings)
    p, before, after = work["paths"], work["steps"], work["later"]
    p["stamps"].mkdir(parents=True, exist_ok=True)
    for path, write in ((p["dataset_toml"], lambda f: write_dataset_toml(f)),
                        (p["model_toml"], lambda f: write_model_toml(f, settings))):
        if path.is_file():
            click.echo(f"keeping {path} (delete it to get the demo's default)")
        else:
            click.echo(f"wrote {write(path)}")
    count = len(before) + len(after) + 3  # + split, train, overview
    number = iter(range(1, count + 1))

    for step in before:
        _run_step(step, p["stamps"], next(number), count)

    split = Step("split", [], [p["dataset"] / "training", p["dataset"] / "validation"], [p["stamps"] / "rasterize-train"])
    _heading(next(number), count, "split", "whole training tiles into training and validation")
    if is_fresh(split, p["stamps"]):
        click.echo("up to date")
    else:
        from robosat_effnet.tiles import read_tiles_csv

        partial_csv = p["train_tiles"] / "partial.csv"
        partial = read_tiles_csv(partial_csv) if partial_csv.is_file() else []
        counts = split_tiles(p["train_tiles"], p["train_labels"], p["dataset"], settings.validation_every, partial)
        mark_done(split, p["stamps"])
        click.echo(f"{counts['training']} training and {counts['validation']} validation tiles in {p['dataset']} "
                   f"(every {settings.validation_every}th to validation; the {len(partial)} partly covered tiles "
                   f"of {partial_csv} are left out)")

    _heading(next(number), count, "train", "an EfficientNet-B0 U-Net from scratch")
    _train(p, epochs)

    for step in after:
        _run_step(step, p["stamps"], next(number), count)

    validation = best_validation(p["history"])
    scores = json.loads(p["eval"].read_text())
    test_iou = _class_value(scores, "iou", "building")
    mask_iou = building_iou(p["mask_tif"], p["test_scene"].parent / "mask.tif")
    _heading(next(number), count, "overview", "the test scene with predicted and true outlines, and the curves")
    from robosat_effnet.overview import plot_overview

    plot_overview(p["test_scene"], p["features"], p["test_buildings"], p["history"], p["overview"], iou=test_iou)
    click.echo(f"wrote {p['overview']}")
    seconds = time.perf_counter() - began
    _summary(p, validation, test_iou, mask_iou, scores, seconds)
    return {"validation": validation, "test_iou": test_iou, "mask_iou": mask_iou, "seconds": seconds, "paths": p}


def _run_step(step: Step, stamps: Path, number: int, count: int) -> None:
    _heading(number, count, step.name, step.about)
    if is_fresh(step, stamps):
        click.echo(f"up to date: {', '.join(map(str, step.outputs))}")
        return
    stale = (Path(stamps) / step.name).is_file()  # it ran before, so its old outputs must be redone
    run_command(step.args + (step.rerun if stale else []), step.name)
    mark_done(step, stamps)


def _train(p: dict[str, Path], epochs: int | None) -> None:
    from robosat_effnet.config import load_model_config

    wanted = epochs or load_model_config(p["model_toml"]).epochs
    done = epochs_done(p["last"])
    step = Step("train", ["train", "--dataset", p["dataset_toml"], "--model", p["model_toml"]],
                [p["last"], p["best"], p["history"]])
    if epochs:
        step.args += ["--epochs", epochs]
    if done >= wanted and all(path.exists() for path in step.outputs):
        if not (p["stamps"] / "train").is_file():
            mark_done(step, p["stamps"])
        click.echo(f"up to date: {p['last']} has {done} of {wanted} epochs (pass --epochs N to train longer)")
        return
    if done:
        click.echo(f"resuming: {p['last']} has {done} of {wanted} epochs")
        step.args += ["--resume", p["last"]]
    run_command(step.args, "train")
    mark_done(step, p["stamps"])


def _summary(p: dict[str, Path], validation: dict[str, float], test_iou: float, mask_iou: float,
             scores: dict[str, Any], seconds: float) -> None:
    tiles = scores.get("tiles", "?")
    lines = [
        "",
        f"validation IoU (building): {validation['iou']:.3f}  (mIoU {validation['miou']:.3f}, best of "
        f"{validation['epochs']} epochs at epoch {validation['epoch']}: {p['best']})",
        f"test scene IoU (building): {test_iou:.3f}  (`rs-effnet eval` on its {tiles} z/x/y tiles)",
        f"                           {mask_iou:.3f}  ({p['mask_tif']} against the true "
        f"{p['test_scene'].parent / 'mask.tif'}, pixel by pixel)",
        "",
        "outputs:",
        f"  {p['scenes']}/{{train,test}}/   synthetic scenes: scene.tif, mask.tif (true buildings), buildings.geojson",
        f"  {p['train_tiles'].parent}/, {p['train_labels'].parent}/   z/x/y image and label tiles of both scenes",
        f"  {p['dataset']}/   the training/validation split; {p['dataset_toml']}, {p['model_toml']}: the configs",
        f"  {p['checkpoints']}/   best.pth, last.pth, checkpoint-NNNNN.pth, history.csv, history.png",
        f"  {p['masks']}/   predicted z/x/y mask tiles of the test scene",
        f"  {p['mask_tif']}   predicted mask on the test scene's own grid",
        f"  {p['features']}   predicted building outlines (lon/lat)",
        f"  {p['eval']}   test metrics and confusion matrix",
        f"  {p['overview']}   the picture",
        f"took {seconds / 60:.1f} min",
    ]
    click.echo("\n".join(lines))


def _heading(number: int, count: int, name: str, about: str) -> None:
    click.secho(f"\n[{number}/{count}] {name}" + (f": {about}" if about else ""), bold=True)


def _class_value(scores: dict[str, Any], key: str, name: str) -> float:
    try:
        value = scores[key][scores["classes"].index(name)]
    except (KeyError, ValueError, IndexError, TypeError):
        raise DemoError(f"the eval results have no {key} for class {name!r}; run the eval step again") from None
    return math.nan if value is None else float(value)


def _read_band(path: str | os.PathLike) -> Any:
    import rasterio

    try:
        with rasterio.open(path) as src:
            return src.read(1)
    except rasterio.errors.RasterioIOError as e:
        raise DemoError(f"cannot read {path}: {e}") from None


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


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
