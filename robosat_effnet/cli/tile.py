"""`rs-effnet tile`: cut a GeoTIFF of any CRS into slippy-map image tiles."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, parse_bands, quiet_option, reports_errors, scene_argument_type
from robosat_effnet.data.warp import DEFAULT_RESAMPLING, RESAMPLINGS
from robosat_effnet.limits import MAX_TILE_SIZE, MAX_WORKERS, MAX_ZOOM
from robosat_effnet.prepare.tile import DEFAULT_MAX_TILES, FORMATS


@click.command("tile", context_settings=COMMAND_SETTINGS)
@click.argument("scene", type=scene_argument_type())
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--zoom", type=click.IntRange(0, MAX_ZOOM), required=True, help="Zoom level of the tiles.")
@click.option("--size", type=click.IntRange(16, MAX_TILE_SIZE), default=256, show_default=True, help="Tile size in px.")
@click.option("--bands", callback=parse_bands, default=None,
              help="1-based bands to keep, in order, e.g. 3,2,1. Default: every band but alpha.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Tile format. Default: png for 1 or 3 uint8 bands, tif (values kept) otherwise.")
@click.option("--resampling", type=click.Choice(RESAMPLINGS),
              default=DEFAULT_RESAMPLING, show_default=True, help="How pixels are resampled into the tile grid.")
@click.option("--max-tiles", type=click.IntRange(min=1), default=DEFAULT_MAX_TILES, show_default=True,
              help="Refuse zooms that would make more tiles than this.")
@click.option("--workers", type=click.IntRange(1, MAX_WORKERS), default=None,
              help="Threads reading and writing tiles. Default: up to 4.")
@click.option("--overwrite", is_flag=True, help="Replace the tiles another run (other scene or settings) left in OUT.")
@quiet_option("No progress bar.")
@reports_errors
def cli(scene, out, zoom, size, bands, fmt, resampling, max_tiles, workers, overwrite, quiet):
    """Cut SCENE (a GeoTIFF in any CRS; a path, or the http(s) URL of a cloud-optimised GeoTIFF) into
    OUT/z/x/y.{png,webp,tif} tiles.

    Tiles without any data are skipped. Tiles only partly covered keep the missing pixels
    transparent (png/webp alpha) or 0 with a mask (tif) and are listed in OUT/partial.csv
    (x,y,z rows, robosat's tiles.csv format) so they can be left out of training. OUT must be new,
    empty, or written by the same command on the same scene and settings (else --overwrite).
    """
    from robosat_effnet.prepare.tile import tile_geotiff

    report = tile_geotiff(scene, out, zoom, size=size, bands=bands, fmt=fmt, resampling=resampling,
                          max_tiles=max_tiles, workers=workers, progress=not quiet, overwrite=overwrite)
    if not report.written:
        raise click.ClickException(f"{scene} has no data at zoom {zoom}: every tile it touches is no-data; "
                                   "check the file's nodata value and bands")
    click.echo(f"wrote {len(report.written)} {report.format} tiles to {out} ({len(report.partial)} partly covered, "
               f"listed in {report.partial_csv}; {report.empty} tiles without data skipped)")
