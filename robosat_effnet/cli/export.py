"""`rs-effnet export`: a checkpoint as a self-describing ONNX file for onnxruntime."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import checked_by, reports_errors
from robosat_effnet.limits import MAX_CALIBRATION_TILES


def _onnx_name(value: str) -> None:
    from robosat_effnet.deploy.export import check_onnx_name

    check_onnx_name(value)


@click.command("export")
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
@reports_errors
def cli(checkpoint, output, opset, overwrite, int8, calibration, calibration_tiles):
    """Write CHECKPOINT (.pth from `rs-effnet train`) as OUTPUT (.onnx) for onnxruntime.

    Batch, height and width stay dynamic (sides multiples of 32); the model's classes, colours, bands,
    normalisation and tile size travel inside the file, so `rs-effnet predict --checkpoint OUTPUT` and
    `rs-effnet eval --checkpoint OUTPUT` use it as they use the checkpoint. With --int8 the weights and
    activations are int8, their ranges measured on tiles of --calibration.
    """
    from robosat_effnet.deploy.export import export_onnx, read_spec, summary

    if int8 and calibration is None:
        raise click.UsageError("--int8 needs --calibration TILES_DIR: tiles like those the model will predict")
    if calibration is not None and not int8:
        raise click.UsageError("--calibration applies to --int8 exports only; add --int8")
    path = export_onnx(checkpoint, output, opset=opset, overwrite=overwrite, int8=int8, calibration=calibration,
                       calibration_tiles=calibration_tiles)
    size = path.stat().st_size / 1e6
    kind = "int8, " if int8 else ""
    click.echo(f"wrote {path} ({size:.1f} MB, {kind}ONNX opset {opset}): {summary(read_spec(path))}")
