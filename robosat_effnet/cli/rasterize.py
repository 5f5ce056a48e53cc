"""`rs-effnet rasterize`: burn GeoJSON polygons into label tiles for a set of image tiles."""

from __future__ import annotations

from pathlib import Path

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, quiet_option, reports_errors
from robosat_effnet.limits import MAX_TILE_SIZE, MAX_TOUCHING_PX, MAX_ZOOM


@click.command("rasterize", context_settings=COMMAND_SETTINGS)
@click.argument("geojson", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--tiles", "tiles", type=click.Path(exists=True), required=True,
              help="Slippy-map folder of image tiles (labels get their sizes), or a tiles.csv of x,y,z rows.")
@click.option("--dataset", type=click.Path(dir_okay=False), default="dataset.toml", show_default=True,
              help="dataset.toml giving the classes and their colours.")
@click.option("--class-property", default=None,
              help="GeoJSON property naming each polygon's class (a name from dataset.toml). "
                   "Without it, a two-class dataset burns every polygon as class 1.")
@click.option("--size", type=click.IntRange(1, MAX_TILE_SIZE), default=256, show_default=True,
              help="Label size in px when --tiles is a tiles.csv (with a folder, each image's own size).")
@click.option("--zoom", type=click.IntRange(0, MAX_ZOOM), default=None,
              help="Label only the tiles of this zoom (e.g. of a folder holding several zooms of the same ground).")
@click.option("--touching-px", type=click.IntRange(0, MAX_TOUCHING_PX), default=0, show_default=True,
              help="Burn the class named 'touching' on building pixels within N px of another building, "
                   "so `features` can split touching buildings apart (dataset.toml must declare it). 0: off.")
@click.option("--overwrite", is_flag=True, help="Replace the labels another run (other polygons or tiles) left in OUT.")
@quiet_option("No progress bar.")
@reports_errors
def cli(geojson, out, tiles, dataset, class_property, size, zoom, touching_px, overwrite, quiet):
    """Write OUT/z/x/y.png palette label tiles from the polygons in GEOJSON.

    GEOJSON is lon/lat (EPSG:4326) unless it names another CRS in a "crs" member. Every tile of
    --tiles gets a label, all background where no polygon falls. OUT must be new, empty, or written
    by this command from the same GeoJSON and tiles (else --overwrite); never inside the image tiles.
    """
    from robosat_effnet.config import load_dataset_config
    from robosat_effnet.config.dataset import TOUCHING, require_touching, touching_index
    from robosat_effnet.outputs import check_separate, claim_folder, make_record, remove_tiles
    from robosat_effnet.prepare.rasterize import image_sizes, rasterize_geojson
    from robosat_effnet.tiles import read_tiles_csv, tile_files

    check_separate([out], [geojson, tiles, dataset])  # labels never go into (or around) the images
    config = load_dataset_config(dataset)
    if touching_px:
        require_touching(config.classes, dataset)
    elif touching_index(config.classes) is not None:
        click.echo(f"warning: {dataset} declares a {TOUCHING!r} class but --touching-px is 0: no pixel is burnt "
                   "as touching (pass e.g. --touching-px 2)", err=True)
    found = list(tile_files(tiles)) if Path(tiles).is_dir() else read_tiles_csv(tiles)
    if zoom is not None:
        found = [tile for tile in found if tile.z == zoom]
    if not found:
        at = f" at zoom {zoom}" if zoom is not None else ""
        raise click.ClickException(f"no tiles{at} in {tiles}; pass a slippy-map folder of images or a tiles.csv")
    if Path(tiles).is_dir():
        files = tile_files(tiles)
        sizes = image_sizes({tile: files[tile] for tile in found})
    else:
        sizes = {tile: (size, size) for tile in found}
    settings = {"tiles": str(Path(tiles).resolve()), "zoom": zoom, "size": None if Path(tiles).is_dir() else size,
                "class_property": class_property, "classes": config.classes}
    if touching_px:  # only then, so that earlier records still match a rerun without it
        settings["touching_px"] = touching_px
    record = make_record("rasterize", geojson, settings)

    def claim() -> None:  # once the polygons are checked: a bad GeoJSON leaves no folder behind
        claim_folder(out, record, overwrite=overwrite, clear=remove_tiles)

    report = rasterize_geojson(geojson, sizes, out, config.classes, config.colors, class_property=class_property,
                               progress=not quiet, touching_px=touching_px,
                               before_writing=claim)
    skipped = f"; {report.skipped} non-polygon features left out" if report.skipped else ""
    click.echo(f"wrote {len(report.tiles)} label tiles to {out}: {report.with_features} with polygons, "
               f"{report.polygons_used} of {report.polygons_total} polygons inside the tiles{skipped}")
