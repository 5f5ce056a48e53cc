"""Options and helpers shared by several commands."""

from __future__ import annotations

import functools
from typing import Callable

import click

from robosat_effnet.errors import RobosatEffnetError


def reports_errors(func: Callable) -> Callable:
    """Turn the library's own exceptions into one-line click errors (exit 1, no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RobosatEffnetError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


checkpoint_option = click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    default=None,
    help="Checkpoint (.pth) written by `rs-effnet train`. Default: best.pth from model.toml's checkpoint folder.",
)
device_option = click.option(
    "--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1. Default: cuda when available, else cpu."
)
workers_option = click.option(
    "--workers", type=click.IntRange(min=0), default=None, help="DataLoader worker processes."
)
batch_size_option = click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Tiles per batch.")
