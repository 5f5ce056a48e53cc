"""`rs-effnet conflate`: the predicted buildings that the map does not have yet, for JOSM or a GIS."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, FiniteFloatRange, checked_by, reports_errors


def _source(value: str) -> None:
    from robosat_effnet.vectorize.osm import check_source

    check_source(value)


@click.command("conflate", context_settings=COMMAND_SETTINGS)
@click.argument("pred", type=click.Path(exists=True, dir_okay=False))
@click.argument("existing", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--overlap", type=FiniteFloatRange(0, 1), default=0.3, show_default=True,
              help="A predicted polygon is already mapped when existing buildings cover more than this share of "
                   "its area (intersection over the predicted polygon's area, in an equal-area CRS).")
@click.option("--source", callback=checked_by(_source), metavar="TEXT",
              help="The source tag of every new building in an .osm output (the imagery, e.g. OpenAerialMap).")
@reports_errors
def cli(pred, existing, out, overlap, source):
    """Write the buildings of PRED (outlines from `rs-effnet features`: GeoJSON or GeoPackage) that EXISTING does
    not have yet to OUT.

    EXISTING: the buildings already mapped, as GeoJSON, GeoPackage or an OSM extract (.osm, .osm.pbf; needs
    pyosmium). OUT: .osm for JOSM (new objects with negative ids, building=yes, never uploaded as they are), or
    .geojson / .gpkg.
    """
    from robosat_effnet.vectorize.conflate import conflate_files

    report = conflate_files(pred, existing, out, overlap=overlap, source=source)
    empty = f"; {report.empty} without area left out" if report.empty else ""
    click.echo(f"wrote {len(report.new)} new buildings to {report.output}: {report.mapped} of {report.predicted} "
               f"predicted are already mapped (more than {overlap:g} of their area covered by the {report.existing} "
               f"buildings of {existing}){empty}")
