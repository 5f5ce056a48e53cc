"""`rs-effnet export`: a checkpoint as a self-describing ONNX file for onnxruntime (or QGIS's Deepness)."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, FiniteFloatRange, checked_by, reports_errors
from robosat_effnet.limits import (
    MAX_AREA_M2,
    MAX_BORDER,
    MAX_CALIBRATION_TILES,
    MAX_RESOLUTION_CM,
    MAX_TILE_SIZE,
    MIN_RESOLUTION_CM,
)


def _onnx_name(value: str) -> None:
    from robosat_effnet.deploy.export import check_onnx_name

    check_onnx_name(value)


@click.command("export", context_settings=COMMAND_SETTINGS)
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.argument("output", type=click.Path(), callback=checked_by(_onnx_name))
@click.option("--opset", type=click.IntRange(11, 20), default=17, show_default=True,
              help="ONNX opset to write (17 loads in onnxruntime 1.14 and later).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it is a model exported earlier.")
@click.option("--int8", is_flag=True, help="Quantise to int8 (onnxruntime static QDQ, per-channel weights): "
              "faster on CPU, masks differ a little; needs --calibration.")
@click.option("--calibration", type=click.Path(exists=True, file_okay=False),
              help="--int8: slippy-map folder of tiles like those the model will predict, for activation ranges.")
@click.option("--calibration-tiles", type=click.IntRange(1, MAX_CALIBRATION_TILES), default=32, show_default=True,
              help="--int8: how many tiles of --calibration to calibrate on (spread over the folder).")
@click.option("--deepness", is_flag=True, help="Write the file the QGIS plugin Deepness runs as it is: RGB "
              "tiles of the checkpoint's size in (0..1, normalised inside), softmax probabilities out, and "
              "Deepness's settings (see README: Use it in QGIS).")
@click.option("--resolution", type=FiniteFloatRange(MIN_RESOLUTION_CM, MAX_RESOLUTION_CM), metavar="CM",
              help="--deepness: cm per pixel, in the layer CRS's units, of the imagery the model was trained on. "
                   "Default: the size in Web Mercator units (an XYZ layer's) of its training tiles' pixel.")
@click.option("--tile-size", type=click.IntRange(32, MAX_TILE_SIZE), metavar="PX",
              help="--deepness: the graph's fixed input size, Deepness's tile (a multiple of 32): 512 gives "
                   "the network more context and fewer seams. Default: the checkpoint's tile size.")
@click.option("--border", type=click.IntRange(0, MAX_BORDER), metavar="PX",
              help="--deepness: px of context kept around each tile's core, as predict's --border; written as "
                   "Deepness's tile overlap in %. Default: 32, at most a quarter of the tile.")
@click.option("--threshold", type=FiniteFloatRange(0, 1), metavar="P",
              help="--deepness: Deepness's probability threshold (0: off). Default: predict's own, 0.7, so that "
                   "QGIS draws predict's masks.")
@click.option("--min-area", type=FiniteFloatRange(0, MAX_AREA_M2), metavar="M2",
              help="--deepness: size Deepness's small-segment filter (a median) to drop patches under about "
                   "this many m2, as `features --min-area` does. Default: 0 (off).")
@reports_errors
def cli(checkpoint, output, opset, overwrite, int8, calibration, calibration_tiles, deepness, resolution, tile_size,
        border, threshold, min_area):
    """Write CHECKPOINT (.pth from `rs-effnet train`) as OUTPUT (.onnx) for onnxruntime.

    Batch, height and width stay dynamic (sides multiples of 32); the model's classes, colours, bands,
    normalisation and tile size travel inside the file, so `rs-effnet predict --checkpoint OUTPUT` and
    `rs-effnet eval --checkpoint OUTPUT` use it as they use the checkpoint. With --int8 the weights and
    activations are int8, their ranges measured on tiles of --calibration. With --deepness the file is
    for QGIS's Deepness plugin (3-band 8-bit models), and predict and eval still take it.
    """
    from robosat_effnet.deploy.deepness import DeepnessSettings, describe
    from robosat_effnet.deploy.export import export_onnx, read_spec, summary

    settings = {"--resolution": resolution, "--tile-size": tile_size, "--border": border, "--threshold": threshold,
                "--min-area": min_area}
    stray = [name for name, value in settings.items() if value is not None]
    if stray and not deepness:
        verb = "applies" if len(stray) == 1 else "apply"
        raise click.UsageError(f"{', '.join(stray)} {verb} to --deepness exports only; add --deepness")
    if int8 and calibration is None:
        raise click.UsageError("--int8 needs --calibration TILES_DIR: tiles like those the model will predict")
    if calibration is not None and not int8:
        raise click.UsageError("--calibration applies to --int8 exports only; add --int8")
    target = DeepnessSettings(resolution, border, threshold, min_area or 0.0, tile_size) if deepness else False
    path = export_onnx(checkpoint, output, opset=opset, overwrite=overwrite, int8=int8, calibration=calibration,
                       calibration_tiles=calibration_tiles, deepness=target)
    size = path.stat().st_size / 1e6
    kind = "int8, " if int8 else ""
    click.echo(f"wrote {path} ({size:.1f} MB, {kind}ONNX opset {opset}): {summary(read_spec(path))}")
    if deepness:
        click.echo(describe(path))
