"""`rs-effnet eval`: metrics of a model on a labelled slippy map."""

from __future__ import annotations

import json

import click

from robosat_effnet.cli.options import batch_size_option, device_option, reports_errors, workers_option
from robosat_effnet.errors import ConfigError


@click.command("eval")
@click.option("--checkpoint", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint (.pth) written by `rs-effnet train`.")
@click.argument("images", type=click.Path(exists=True, file_okay=False))
@click.argument("labels", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the metrics (and the confusion matrix) to this JSON file.")
@batch_size_option
@device_option
@workers_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@reports_errors
def cli(checkpoint, images, labels, json_path, batch_size, device, workers, quiet):
    """Score CHECKPOINT on IMAGES against LABELS (slippy maps of the same tiles).

    Prints per-class IoU, precision, recall, F1 and MCC (one class against the rest), then mIoU,
    the multi-class MCC and pixel accuracy. Pixels labelled 255 or without imagery are not counted.
    """
    from robosat_effnet.evaluate import evaluate, format_table, to_json
    from robosat_effnet.io import atomic_path

    result = evaluate(checkpoint, images, labels, batch_size=batch_size or 8, device=device, workers=workers or 0,
                      progress=not quiet)
    click.echo(format_table(result))
    if result["unlabelled"]:
        click.echo(f"{result['unlabelled']} image tiles without a label were not scored")
    if json_path:
        try:
            with atomic_path(json_path) as tmp:
                tmp.write_text(json.dumps(to_json({"checkpoint": str(checkpoint), **result}), indent=2))
        except OSError as e:
            raise ConfigError(f"cannot write {json_path}: {e}") from None
        click.echo(f"wrote {json_path}")
