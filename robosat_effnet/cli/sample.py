"""`rs-effnet sample`: write a synthetic train scene and a differently seeded test scene."""

from __future__ import annotations

from pathlib import Path

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, reports_errors


@click.command(name="sample", context_settings=COMMAND_SETTINGS)
@click.argument("scene_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the train scene.")
@click.option("--size", type=click.IntRange(64, 16384), default=2048, show_default=True,
              help="Width and height of each scene in pixels (0.3 m each).")
@click.option("--crs", type=click.Choice(["epsg3857", "utm"]), default="epsg3857", show_default=True,
              help="Web mercator, or the UTM zone of the scene centre.")
@click.option("--test-seed", type=click.IntRange(min=0), default=None, show_default="--seed + 1",
              help="Seed of the test scene.")
@click.option("--overwrite", is_flag=True, help="Replace what SCENE_DIR/train and test hold (another sample, "
              "or files sample did not write).")
@reports_errors
def cli(scene_dir: Path, seed: int, size: int, crs: str, test_seed: int | None, overwrite: bool) -> None:
    """Write synthetic aerial scenes of a small town to SCENE_DIR/train and SCENE_DIR/test.

    Each holds scene.tif (RGB GeoTIFF, 0.3 m/px), mask.tif (0/1 buildings) and buildings.geojson.
    """
    from robosat_effnet.data.synthetic import write_sample  # rasterio, shapely, pyproj: not for --help

    test_seed = seed + 1 if test_seed is None else test_seed
    if test_seed == seed:
        raise click.BadParameter("must differ from --seed, or the test scene repeats the train scene.",
                                 param_hint="--test-seed")
    for split, split_seed in (("train", seed), ("test", test_seed)):
        paths = write_sample(scene_dir / split, seed=split_seed, size=size, crs=crs, overwrite=overwrite)
        click.echo(f"{split} (seed {split_seed}): {paths['scene']}, {paths['mask'].name}, {paths['buildings'].name}")
