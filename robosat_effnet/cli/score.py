"""`rs-effnet score`: predicted building outlines against true ones, building by building (SpaceNet protocol)."""

from __future__ import annotations

import json

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, FiniteFloatRange, reports_errors, show_warnings
from robosat_effnet.errors import OutputError


@click.command("score", context_settings=COMMAND_SETTINGS)
@click.argument("pred", type=click.Path(exists=True, dir_okay=False))
@click.argument("truth", type=click.Path(exists=True, dir_okay=False))
@click.option("--match-iou", type=FiniteFloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="IoU at which a predicted outline matches a true one (at the threshold counts).")
@click.option("--min-area", type=FiniteFloatRange(min=0), default=0.0, show_default=True,
              help="Leave out outlines (predicted and true) smaller than this, in m2, after clipping to the area.")
@click.option("--tiles", type=click.Path(exists=True), default=None,
              help="Score only inside these tiles (a slippy-map folder of the imagery, or a tiles.csv).")
@click.option("--area", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Score only inside the polygons of this file (e.g. the imagery's outline).")
@click.option("--class", "class_name", default=None,
              help="Score only this class (files whose features carry the class property are filtered).")
@click.option("--class-property", default="class", show_default=True,
              help="Feature property holding the class (what `rs-effnet features` writes).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write tp, fp, fn, precision, recall, f1, mean_iou (and the matches) to this JSON file.")
@reports_errors
def cli(pred, truth, match_iou, min_area, tiles, area, class_name, class_property, json_path):
    """Match the outlines in PRED against those in TRUTH, one to one, and count buildings.

    Each file is GeoJSON in lon/lat, or in the CRS its "crs" member names (or any vector file with a CRS, e.g.
    .gpkg). A prediction matches the unmatched true outline of highest IoU when IoU >= --match-iou; the rest
    are false positives and false negatives. With --tiles or --area both sides are clipped to that area first,
    so true buildings outside the imagery are not counted as missed.
    """
    from robosat_effnet.evaluation.score import format_table, score_files
    from robosat_effnet.evaluation.vectors import polygon_area, tiles_area
    from robosat_effnet.io import atomic_path
    from robosat_effnet.outputs import check_separate, claim_output, mark, writing

    show_warnings()
    if tiles is not None and area is not None:
        raise click.UsageError("give --tiles or --area, not both")
    if json_path is not None:
        try:
            check_separate([json_path], [pred, truth, area, tiles])
            claim_output(json_path, "score")  # and the dead temp files a killed score left beside it
        except OutputError as e:  # an input or somebody's file would be overwritten: a usage error
            raise click.BadParameter(str(e), param_hint="--json") from None
    region = tiles_area(tiles) if tiles is not None else polygon_area(area) if area is not None else None
    result = score_files(pred, truth, match_iou=match_iou, min_area=min_area, area=region, class_name=class_name,
                         class_property=class_property)
    click.echo(format_table(result))
    if json_path is not None:
        with writing(json_path), atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps({**mark("score"), "pred": str(pred), "truth": str(truth), "class": class_name,
                                       **result}, indent=1))
        click.echo(f"wrote {json_path}")
