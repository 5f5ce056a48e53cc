"""`rs-effnet cover`: the tiles an area needs, as robosat's tiles.csv."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, reports_errors, scene_argument_type
from robosat_effnet.limits import MAX_ZOOM
from robosat_effnet.prepare.cover import MAX_BUFFER
from robosat_effnet.prepare.tile import DEFAULT_MAX_TILES


def _bbox(ctx: click.Context, param: click.Parameter, value: str | None):
    from robosat_effnet.errors import ConfigError
    from robosat_effnet.prepare.cover import parse_bbox

    try:
        return None if value is None else parse_bbox(value)
    except ConfigError as e:
        raise click.BadParameter(str(e)) from None


@click.command("cover", context_settings=COMMAND_SETTINGS)
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--zoom", type=click.IntRange(0, MAX_ZOOM), required=True, help="Zoom level of the tiles.")
@click.option("--area", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Polygons of the area (GeoJSON in its declared CRS, else lon/lat; GeoPackage or any vector file).")
@click.option("--bbox", callback=_bbox, default=None,
              help="The area as W,S,E,N in lon/lat, e.g. 32.58,0.31,32.59,0.32.")
@click.option("--geotiff", "scene", type=scene_argument_type(), default=None,
              help="A GeoTIFF (path or http(s) URL of a COG): the tiles `rs-effnet tile` writes from it.")
@click.option("--buffer", type=click.IntRange(0, MAX_BUFFER), default=0, show_default=True,
              help="Rings of neighbouring tiles added around the area, for context.")
@click.option("--max-tiles", type=click.IntRange(min=1), default=DEFAULT_MAX_TILES, show_default=True,
              help="Refuse areas and zooms that would make more tiles than this.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT (a rerun writing the same tiles needs none).")
@reports_errors
def cli(out, zoom, area, bbox, scene, buffer, max_tiles, overwrite):
    """Write the tiles at --zoom that an area needs to OUT, robosat's tiles.csv (x,y,z rows, each once, sorted).

    The area is one of --area (polygons), --bbox or --geotiff. OUT feeds `rs-effnet download` (imagery for
    those tiles) or `rasterize --tiles`.
    """
    from robosat_effnet.prepare.cover import cover, read_area, write_cover

    given = [name for name, value in (("--area", area), ("--bbox", bbox), ("--geotiff", scene)) if value is not None]
    if len(given) != 1:
        raise click.UsageError(f"give exactly one of --area, --bbox and --geotiff (got {', '.join(given) or 'none'})")
    polygons = read_area(area) if area is not None else bbox
    tiles = cover(zoom, area=polygons, scene=scene, buffer=buffer, max_tiles=max_tiles)
    changed = write_cover(out, tiles, [area, scene], overwrite=overwrite)
    click.echo(f"{'wrote' if changed else 'kept'} {len(tiles)} tiles of zoom {zoom} in {out}"
               + ("" if changed else " (it already lists exactly these)"))
