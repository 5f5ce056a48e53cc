"""`rs-effnet blocks`: which blocks of an area to label (and fine-tune on), and which tiles are left to map."""

from __future__ import annotations

from pathlib import Path

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, FiniteFloatRange, reports_errors
from robosat_effnet.limits import MAX_ZOOM


@click.command(name="blocks", context_settings=COMMAND_SETTINGS)
@click.argument("tiles", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--fraction", type=FiniteFloatRange(0, 1, min_open=True, max_open=True), default=0.25,
              show_default=True, help="Share of the tiles to pick, in whole blocks.")
@click.option("--levels", type=click.IntRange(1, 8), default=1, show_default=True,
              help="A block is the tiles under one parent this many zooms up (1: 2x2 tiles, 2: 4x4).")
@click.option("--zoom", type=click.IntRange(0, MAX_ZOOM), default=None, help="Use the tiles of this zoom (needed when "
              "TILES holds several).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the random draw of blocks.")
@click.option("--probs", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The folder `rs-effnet predict --probs` wrote for TILES: take the blocks the model is least sure "
              "of (highest mean entropy) instead of random ones.")
@click.option("--overwrite", is_flag=True, help="Replace what OUT holds (another split, or files blocks did not "
              "write).")
@reports_errors
def cli(tiles: Path, out: Path, fraction: float, levels: int, zoom: int | None, seed: int, probs: Path | None,
        overwrite: bool) -> None:
    """Split the tiles of TILES (a slippy-map folder, or robosat's tiles.csv) into blocks of neighbouring tiles.

    Writes OUT/local.csv (whole blocks holding at least --fraction of the tiles: label these, and fine-tune on
    them) and OUT/rest.csv (every other tile: what the model maps, and where it is scored), both robosat's
    x,y,z rows. Blocks are drawn at random by --seed, or, with --probs, the ones a model is least sure of first.
    """
    from robosat_effnet.outputs import check_separate, claim_folder, make_record, writing
    from robosat_effnet.prepare.blocks import pick_blocks, uncertainty
    from robosat_effnet.tiles import read_tiles_csv, tile_files, write_tiles_csv

    found = list(tile_files(tiles)) if tiles.is_dir() else read_tiles_csv(tiles)
    found = [t for t in found if zoom is None or t.z == zoom]
    if not found:
        raise click.BadParameter(f"{tiles} holds no z/x/y tiles{f' at zoom {zoom}' if zoom is not None else ''}",
                                 param_hint="TILES")
    scores = uncertainty(probs, found) if probs is not None else None
    local, rest = pick_blocks(found, fraction, levels, seed, scores)
    check_separate([out], [tiles] + ([probs] if probs is not None else []))
    settings = {"fraction": fraction, "levels": levels, "seed": seed} | ({"probs": str(probs)} if probs else {})
    claim_folder(out, make_record("blocks", tiles, settings), overwrite=overwrite)
    with writing(out):
        write_tiles_csv(out / "local.csv", local)
        write_tiles_csv(out / "rest.csv", rest)
    click.echo(f"{len(local)} tiles in whole blocks -> {out / 'local.csv'}; {len(rest)} other tiles -> "
               f"{out / 'rest.csv'}")
