"""`rs-effnet features`: mask tiles to GeoJSON polygons, merged across tile borders."""

from __future__ import annotations

from pathlib import Path

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, FiniteFloatRange, quiet_option, reports_errors
from robosat_effnet.errors import ConfigError, UnknownNameError
from robosat_effnet.limits import MAX_ZOOM
from robosat_effnet.text import ascii_int, shown
from robosat_effnet.threshold import OUTLINE_MIN_AREA


def mask_classes(masks: str, dataset: str | None) -> tuple[list[str] | None, str | None]:
    """(class names of the mask tiles, where they were read) for `features MASKS`.

    --dataset when given (a warning if the masks' record names other classes); else the record that `predict`
    or `rasterize` wrote into MASKS (the data's own word); else ./dataset.toml if there is one, as `train` and
    `rasterize` read it; else nothing (class 1 is "foreground").
    """
    from robosat_effnet.config import load_dataset_config
    from robosat_effnet.outputs import RECORD, recorded_classes, warn_other_classes

    recorded, record = recorded_classes(masks), str(Path(masks) / RECORD)
    if dataset is not None:
        classes = load_dataset_config(dataset).classes
        warn_other_classes(masks, classes, dataset, "masks",
                           f"using {dataset}'s (leave out --dataset to use the masks' own)")
        return classes, dataset
    if recorded is not None:
        return recorded, record
    if Path("dataset.toml").is_file():
        return load_dataset_config("dataset.toml").classes, "dataset.toml"
    return None, None


def resolve_classes(names: tuple[str, ...], classes: list[str] | None, source: str | None) -> dict[int, str]:
    """--class values (names from `classes`, or class indices) -> {index: name}; `source` names where the
    classes were read, for messages.

    Without --class: every class but the first (background), or class 1 ("foreground") without classes.
    """
    if not names:
        return {1: "foreground"} if classes is None else {i: name for i, name in enumerate(classes) if i > 0}
    result = {}
    for name in names:
        index = ascii_int(name)  # ASCII digits only: int() takes '١' and fails on '²'
        if index is not None:
            if index > 254 or (classes is not None and index >= len(classes)):
                raise ConfigError(f"class index {shown(index)} is out of range"
                                  + (f" for {source} (0..{len(classes) - 1})" if classes is not None else ""))
            result[index] = classes[index] if classes is not None else str(index)
        elif classes is None:
            raise ConfigError(f"class {name!r} is a name: pass --dataset dataset.toml to look it up, "
                              "or give its index, e.g. --class 1")
        elif name.lower() in (c.lower() for c in classes):
            index = [c.lower() for c in classes].index(name.lower())
            result[index] = classes[index]
        else:
            raise UnknownNameError(f"class {name!r} is not in {source}, whose classes are {', '.join(classes)}; "
                                   "pick one of those")
    return result


@click.command("features", context_settings=COMMAND_SETTINGS)
@click.argument("masks", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--class", "names", multiple=True,
              help="Class to extract, by name (needs --dataset) or index; repeat for several. "
                   "Default: every class but background.")
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False), default=None,
              help="dataset.toml naming the classes. Default: the classes the masks' own record names "
                   "(`predict`, `rasterize`), else ./dataset.toml if there is one.")
@click.option("--min-area", type=FiniteFloatRange(min=0), default=OUTLINE_MIN_AREA, show_default=True,
              help="Drop polygons smaller than this, in square metres on the ground.")
@click.option("--simplify", type=FiniteFloatRange(min=0), default=None,
              help="Simplification tolerance in metres on the ground. Default: one pixel; 0: none.")
@click.option("--zoom", type=click.IntRange(0, MAX_ZOOM), default=None,
              help="Use only the mask tiles of this zoom (default: all; several zooms are merged).")
@click.option("--regularize", is_flag=True,
              help="Square each outline to its own axes (right angles, near-circles kept round).")
@click.option("--tolerance", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="--regularize tolerance in metres on the ground. Default: 1.5 pixels.")
@click.option("--diagonals/--no-diagonals", default=True, show_default=True,
              help="--regularize may keep 45-degree edges (without: only right angles).")
@click.option("--probs", type=click.Path(exists=True, file_okay=False), default=None,
              help="Probability tiles (`predict --probs`) of the same tiles: adds each polygon's mean, `score`.")
@click.option("--min-score", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="With --probs: drop polygons whose mean probability is below this (the model's doubt).")
@quiet_option("No progress bar.")
@reports_errors
def cli(masks, out, names, dataset, min_area, simplify, zoom, regularize, tolerance, diagonals, probs, min_score,
        quiet):
    """Polygonise the mask tiles in MASKS (z/x/y.png, any zoom) into OUT, lon/lat GeoJSON (.geojson) or
    GeoPackage (.gpkg).

    Polygons continuing across tile borders become one feature; properties: class, area_m2 (and score with
    --probs). Classes are named as --dataset says, else as the record `predict` or `rasterize` left in MASKS,
    else as ./dataset.toml. When they include one named "touching" (`rasterize --touching-px`), blobs of
    touching buildings are split into one polygon per building.
    """
    from robosat_effnet.config.dataset import touching_index
    from robosat_effnet.outputs import check_separate
    from robosat_effnet.vectorize.features import mask_features
    from robosat_effnet.vectorize.output import check_output, write_features

    if min_score > 0 and probs is None:
        raise click.UsageError("--min-score needs --probs: the probability tiles `rs-effnet predict --probs` wrote "
                               "for the same tiles")
    all_classes, source = mask_classes(masks, dataset)  # --dataset, else the masks' record, else ./dataset.toml
    classes = resolve_classes(names, all_classes, source)
    check_output(out)  # a known format, its libraries installed: before the long work
    if regularize:
        from robosat_effnet.extras import require_footprints as require

        require("--regularize")
    touching = touching_index(all_classes) if all_classes else None
    classes.pop(touching, None)
    probabilities = None
    if probs is not None:
        from robosat_effnet.data.probabilities import probability_dirs

        folders = dict(probability_dirs(probs, all_classes or ["background", "foreground"]))
        probabilities = {index: folders[index] for index in classes if index in folders}
    check_separate([out], [masks, source, probs])  # before the long work: never over an input
    report = mask_features(masks, classes, min_area=min_area, simplify=simplify, zoom=zoom, progress=not quiet,
                           touching=touching, regularize=regularize, tolerance=tolerance, diagonals=diagonals,
                           probabilities=probabilities, min_score=min_score)
    write_features(out, report.features)
    counts = ", ".join(f"{sum(f.class_name == n for f in report.features)} {n}" for n in classes.values())
    click.echo(f"wrote {len(report.features)} features ({counts}) from {report.tiles} tiles to {out}"
               + (f"; {report.dropped} below {min_area:g} m2 dropped" if report.dropped else "")
               + (f"; {report.unsure} scored below {min_score:g} dropped" if report.unsure else ""))
