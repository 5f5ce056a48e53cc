"""`rs-effnet study`: the same recipe, several backbones, one table and one plot."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import (
    COMMAND_SETTINGS,
    building_min_area_option,
    comma_integers,
    device_option,
    mask_threshold_option,
    quiet_option,
    reports_errors,
    show_warnings,
)
from robosat_effnet.limits import MAX_REPEATS, MAX_SEED


def _backbones(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    from robosat_effnet.errors import UnknownNameError
    from robosat_effnet.models import canonical_backbone

    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise click.BadParameter("name at least one backbone, e.g. b0,resnet50")
    try:
        return [canonical_backbone(name) for name in names]
    except UnknownNameError as e:
        raise click.BadParameter(str(e)) from None


def _weights(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise click.BadParameter("name at least one: none, imagenet or a weights file")
    return names


def _seeds(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    return comma_integers(value, 0, "integers, e.g. 0,1", f"give one or more seeds from 0 to {MAX_SEED}, e.g. 0,1",
                          maximum=MAX_SEED)


@click.command("study", context_settings=COMMAND_SETTINGS)
@click.option("--dataset", "dataset_path", type=click.Path(dir_okay=False), default="dataset.toml",
              show_default=True, help="robosat dataset config (TOML).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default="model.toml", show_default=True,
              help="robosat model config (TOML): the recipe every backbone is trained with.")
@click.option("--backbones", default="b0,b2,b4,resnet50", show_default=True, callback=_backbones,
              help="Comma-separated backbones (b0..b8, l2, lite0..lite4, efficientnet-b4, resnet50).")
@click.option("--seeds", default="0", show_default=True, callback=_seeds,
              help="Comma-separated seeds; each backbone is trained once per seed.")
@click.option("--weights", "weights", default=None, callback=_weights,
              help="Comma-separated encoder initialisations to compare, each none, imagenet or a file; every "
                   "backbone is trained with each [model.toml: weights].")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs per run [model.toml: epochs].")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Study folder: one subfolder per run, results.csv, results.md, accuracy-vs-speed.png.")
@device_option
@building_min_area_option
@mask_threshold_option
@click.option("--checkpoint", type=click.Choice(["last", "best"]), default="last", show_default=True,
              help="Checkpoint scored: the last epoch's, or the best validation mIoU's (chosen on the scored split).")
@click.option("--speed-repeats", type=click.IntRange(1, MAX_REPEATS), default=10, show_default=True,
              help="Interleaved timing rounds of the CPU speed measurement.")
@quiet_option()
@reports_errors(oom_hint="a smaller --batch-size or image_size, or a smaller model: backbone, decoder_channels")
def cli(dataset_path, model_path, backbones, seeds, weights, epochs, out, device, min_area, threshold, checkpoint,
        speed_repeats, quiet):
    """Train every backbone (x weights x seed) with one recipe, score each on the validation split, compare cost.

    Writes OUT/results.csv (one row per run), OUT/results.md (per model: mean and spread over seeds) and
    OUT/accuracy-vs-speed.png. A rerun skips finished runs and resumes an interrupted one from its last.pth;
    a folder made with another recipe (dataset, settings, epochs) is refused.
    """
    show_warnings()
    from robosat_effnet.study import run_study

    result = run_study(dataset_path, model_path, backbones, out, seeds=seeds, weights=weights, epochs=epochs,
                       device=device,
                       min_area=min_area, checkpoint=checkpoint, speed_repeats=speed_repeats,
                       progress=not quiet, threshold=threshold)
    if result["skipped"]:
        click.echo(f"already finished, skipped: {', '.join(result['skipped'])}")
    click.echo(f"{len(result['rows'])} runs; wrote {result['csv']}, {result['markdown']}, {result['plot']}")
