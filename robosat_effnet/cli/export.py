"""`rs-effnet export`: a checkpoint as a self-describing ONNX file for onnxruntime."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import reports_errors


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.argument("output", type=click.Path())
@click.option("--opset", type=click.IntRange(11, 20), default=17, show_default=True,
              help="ONNX opset to write (17 loads in onnxruntime 1.14 and later).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it is a model exported earlier.")
@reports_errors
def cli(checkpoint, output, opset, overwrite):
    """Write CHECKPOINT (.pth from `rs-effnet train`) as OUTPUT (.onnx) for onnxruntime.

    Batch, height and width stay dynamic (sides multiples of 32); the model's classes, colours, bands,
    normalisation and tile size travel inside the file, so `rs-effnet predict --checkpoint OUTPUT` and
    `rs-effnet eval --checkpoint OUTPUT` use it as they use the checkpoint.
    """
    from robosat_effnet.export import export_onnx, read_spec, summary

    path = export_onnx(checkpoint, output, opset=opset, overwrite=overwrite)
    size = path.stat().st_size / 1e6
    click.echo(f"wrote {path} ({size:.1f} MB, ONNX opset {opset}): {summary(read_spec(path))}")
