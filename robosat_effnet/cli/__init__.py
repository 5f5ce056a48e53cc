"""The `rs-effnet` command line: a click group whose commands live one per module.

Commands are imported lazily, so `rs-effnet --help` stays fast and a command's heavy
imports (torch, rasterio) happen only when it runs: a command module imports them inside its function, and
takes the defaults, choices and bounds of its options from torch-free modules (tests/test_cli_help.py).
"""

from __future__ import annotations

import importlib

import click

from robosat_effnet._version import __version__
from robosat_effnet.cli.options import COMMAND_SETTINGS

# command name -> module under robosat_effnet.cli defining a click command named `cli`
COMMANDS = {
    "sample": "sample",
    "cover": "cover",
    "download": "download",
    "tile": "tile",
    "rasterize": "rasterize",
    "weights": "weights",
    "train": "train",
    "predict": "predict",
    "features": "features",
    "conflate": "conflate",
    "eval": "eval",
    "score": "score",
    "export": "export",
    "study": "study",
    "blocks": "blocks",
    "view": "view",
    "bench": "bench",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._module_exists(name)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._module_exists(name):
            return None
        module = importlib.import_module(f"robosat_effnet.cli.{COMMANDS[name]}")
        return module.cli

    @staticmethod
    def _module_exists(name: str) -> bool:
        return importlib.util.find_spec(f"robosat_effnet.cli.{COMMANDS[name]}") is not None


@click.group(cls=LazyGroup, context_settings=COMMAND_SETTINGS)
@click.version_option(__version__, prog_name="rs-effnet")
def main() -> None:
    """EfficientNet segmentation of aerial imagery on slippy-map tiles and GeoTIFFs.

    A typical run: `rs-effnet train --backbone b4`, then `rs-effnet predict tiles/`.
    """
    from robosat_effnet.cli.options import show_warnings

    show_warnings()  # the library's warnings (unknown keys, merged zooms, ...) as one line each
