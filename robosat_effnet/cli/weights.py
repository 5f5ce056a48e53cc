"""`rs-effnet weights`: class weights of a dataset's training labels, as robosat's `rs weights` computes them."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, quiet_option, reports_errors


@click.command("weights", context_settings=COMMAND_SETTINGS)
@click.option("--dataset", "dataset_path", type=click.Path(dir_okay=False), default="dataset.toml",
              show_default=True, help="robosat dataset config (TOML).")
@quiet_option("No progress bar.")
@reports_errors
def cli(dataset_path, quiet):
    """Print class weights 1 / ln(1.02 + pixel frequency) over training/labels as a [weights] table.

    Paste the output into dataset.toml; the CrossEntropy, mIoU and Focal losses use it.
    """
    from robosat_effnet.cli.options import show_warnings
    from robosat_effnet.config import load_dataset_config
    from robosat_effnet.training.datasets import class_weights

    show_warnings()
    config = load_dataset_config(dataset_path)
    values = class_weights(config, progress=not quiet)
    click.echo("[weights]")
    click.echo(f"  values = [{', '.join(repr(v) for v in values)}]")
