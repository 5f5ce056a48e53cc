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
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

# The demo's data and scores live in demo.data; they are re-exported here, where the demo is used from.
from robosat_effnet.demo.data import (  # noqa: F401
    DemoError,
    Settings,
    best_validation,
    building_iou,
    epochs_done,
    split_tiles,
    whole_tiles,
    write_dataset_toml,
    write_model_toml,
    write_text,
)
from robosat_effnet.errors import ConfigError, RobosatEffnetError  # noqa: F401 (ConfigError: re-exported)

STAMPS = ".steps"  # one file per finished step; its modification time says when the step last ran


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


def is_fresh(step: Step, stamps: str | os.PathLike) -> bool:
    """True when `step` ran after every change to its inputs and all its outputs still exist (make's rule)."""
    stamp = Path(stamps) / step.name
    if not stamp.is_file() or not all(Path(p).exists() for p in step.outputs):
        return False
    newest = max((Path(p).stat().st_mtime for p in step.inputs if Path(p).exists()), default=0.0)
    return stamp.stat().st_mtime >= newest


def mark_done(step: Step, stamps: str | os.PathLike) -> Path:
    """Record that `step` just finished (the stamp holds its command line)."""
    return write_text(Path(stamps) / step.name, command_line(step.args) + "\n")


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


def plan(settings: Settings) -> tuple[dict[str, Path], list[Step], list[Step]]:
    """The demo's paths, and its `rs-effnet` steps before and after training (which depends on last.pth)."""
    o, s = settings.out, settings
    p = {"dataset_toml": o / "dataset.toml", "model_toml": o / "model.toml", "dataset": o / "dataset",
         "scenes": o / "scenes", "checkpoints": o / "checkpoints", "eval": o / "eval.json",
         "overview": o / "overview.png", "stamps": o / STAMPS, "predictions": o / "predictions",
         "view": o / "view"}
    p.update(best=p["checkpoints"] / "best.pth", last=p["checkpoints"] / "last.pth",
             history=p["checkpoints"] / "history.csv", masks=p["predictions"] / "masks",
             mask_tif=p["predictions"] / "mask.tif", features=p["predictions"] / "buildings.geojson")
    before = [Step("sample", ["sample", p["scenes"], "--size", s.size, "--seed", s.seed],
                   [p["scenes"] / split / name for split in ("train", "test")
                    for name in ("scene.tif", "mask.tif", "buildings.geojson")],
                   rerun=["--overwrite"], about="a synthetic town to train on and another to test on")]
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
                               "--class", "building", "--regularize"], [p["features"]], [p["stamps"] / "predict"],
                  about="the predicted masks into building outlines squared to their own axes (GeoJSON)"),
             Step("eval", ["eval", p["test_tiles"], p["test_labels"], "--checkpoint", p["best"], "--json", p["eval"]],
                  [p["eval"]], [p["stamps"] / "train", p["stamps"] / "rasterize-test"],
                  about="the model on the test scene's whole tiles against their true labels"),
             Step("view", ["view", p["test_tiles"], "--masks", p["masks"], "--outlines", p["features"], "--truth",
                           p["test_buildings"], "--dataset", p["dataset_toml"], "--out", p["view"], "--no-serve",
                           "--quiet"], [p["view"] / "index.html"], [p["stamps"] / "features"],
                  about="a map page of the test scene: imagery, predicted masks, outlines coloured by match")]
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
             Step("train", [], [], about=f"{_model_name(settings)}, its encoder starting from ImageNet weights"
                  if settings.weights == "imagenet" else f"{_model_name(settings)} from scratch"), *after]
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
    from robosat_effnet.demo.overview import plot_overview

    plot_overview(p["test_scene"], p["features"], p["test_buildings"], p["history"], p["overview"], iou=test_iou,
                  title=f"rs-effnet demo: {_model_name(settings)} "
                  f"{'fine-tuned from ImageNet weights' if settings.weights == 'imagenet' else 'trained from scratch'} "
                  f"for {validation['epochs']} epochs, on a test town it has not seen")
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
        f"  {p['checkpoints']}/  best.pth, last.pth, the newest checkpoint-NNNNN.pth, history.csv, history.png",
        f"  {p['masks']}/  predicted z/x/y mask tiles of the test scene",
        f"  {p['mask_tif']}  predicted mask on the test scene's own grid",
        f"  {p['features']}  predicted building outlines (lon/lat)",
        f"  {p['eval']}  test metrics and confusion matrix",
        f"  {p['overview']}  the picture",
        f"  {p['view']}/  the map page: open {p['view']}/index.html, or serve it with "
        f"`rs-effnet view {p['test_tiles']} --masks {p['masks']} --outlines {p['features']}`",
        f"done in {minutes:.1f} min; run it again to reuse all this, or with --epochs N to train longer",
    ]))
    return {"validation": validation, "test_iou": test_iou, "mask_iou": mask_iou, "minutes": minutes, "paths": p}


def _model_name(settings: Settings) -> str:
    """'EfficientNet-Lite0 U-Net' for the settings' backbone."""
    from robosat_effnet.models import canonical_backbone

    variant = canonical_backbone(settings.backbone).removeprefix("efficientnet-")
    if variant == "resnet50":
        return "ResNet50 U-Net"
    return f"EfficientNet-{variant.capitalize() if variant.startswith('lite') else variant.upper()} U-Net"


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


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path), default="demo")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Total training epochs (default: model.toml's); more than last time continues training.")
def main(out: Path, epochs: int | None) -> None:
    """Run the whole rs-effnet pipeline on a synthetic town into OUT (default: demo), reusing what is there."""
    try:
        run_demo(Settings(out=out), epochs)
    except RobosatEffnetError as e:  # one line and exit 1, as every rs-effnet command reports (demo is below cli)
        raise click.ClickException(str(e)) from None

