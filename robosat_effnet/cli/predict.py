"""`rs-effnet predict`: slippy-map tiles or a GeoTIFF scene in, slippy-map masks (or probabilities) out."""

from __future__ import annotations

import os
from pathlib import Path

import click

from robosat_effnet.cli.options import (
    COMMAND_SETTINGS,
    batch_size_option,
    checkpoint_option,
    device_option,
    mask_threshold_option,
    parse_bands,
    precision_option,
    quiet_option,
    reports_errors,
    scene_argument_type,
    workers_option,
)
from robosat_effnet.data.warp import DEFAULT_RESAMPLING, RESAMPLINGS
from robosat_effnet.limits import MAX_BORDER, MAX_TILE_SIZE, MAX_WINDOW, MAX_ZOOM

GEOTIFF_SUFFIXES = {".tif", ".tiff"}


def _shard(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    from robosat_effnet.errors import ConfigError
    from robosat_effnet.predict.runner import parse_shard

    try:
        return parse_shard(value)
    except ConfigError as e:
        raise click.BadParameter(str(e)) from None


def default_checkpoint(model_config: str) -> Path:
    """best.pth in the checkpoint folder that `model_config` (robosat's model.toml) names."""
    from robosat_effnet.config import load_model_config
    from robosat_effnet.errors import ConfigError

    path = Path(model_config)
    if not path.is_file():
        raise ConfigError(f"no --checkpoint given and no model config {path} in {Path.cwd()}; "
                          "pass --checkpoint best.pth, or run where `rs-effnet train` ran")
    folder = Path(load_model_config(path).checkpoint)
    return folder if folder.suffix == ".pth" else folder / "best.pth"


def default_workers() -> int:
    """DataLoader workers: none on small machines (they would compete with inference), else up to 4."""
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(4, cores // 2)


@click.command("predict", context_settings=COMMAND_SETTINGS)
@click.argument("source", type=scene_argument_type(folders=True))
@click.argument("output", type=click.Path(file_okay=False), required=False)
@checkpoint_option
@click.option("--model", "model_config", default="model.toml", show_default=True, type=click.Path(dir_okay=False),
              help="robosat model config whose checkpoint folder holds best.pth (used without --checkpoint).")
@click.option("--zoom", type=click.IntRange(0, MAX_ZOOM), help="GeoTIFF: zoom level of the slippy-map tiles to write.")
@click.option("--tile-size", type=click.IntRange(1, MAX_TILE_SIZE),
              help="GeoTIFF: px per tile. Default: the checkpoint's.")
@click.option("--bands", callback=parse_bands, help="1-based bands to use, e.g. 1,2,3. Default: the checkpoint's, "
              "else every band (GeoTIFF: every band but alpha).")
@click.option("--resampling", type=click.Choice(RESAMPLINGS),
              default=DEFAULT_RESAMPLING, show_default=True,
              help="GeoTIFF: how pixels are warped into the tile grid (as the training tiles were cut).")
@click.option("--geotiff", "geotiff_out", type=click.Path(dir_okay=False),
              help="GeoTIFF: also write one class mask on the scene's own grid to this file.")
@click.option("--window", type=click.IntRange(32, MAX_WINDOW), default=512, show_default=True,
              help="--geotiff: sliding-window size in px (a multiple of 32).")
@click.option("--overlap", type=click.IntRange(0, MAX_WINDOW // 2), default=64, show_default=True,
              help="--geotiff: px shared by neighbouring windows and blended.")
@click.option("--max-tiles", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="GeoTIFF: refuse zooms that make more tiles than this.")
@click.option("--border", type=click.IntRange(0, MAX_BORDER), default=32, show_default=True,
              help="px of context around each tile (from neighbours, mirrored where there are none).")
@click.option("--masks/--probs", "masks", default=True, show_default=True,
              help="Write class masks (palette PNG) or robosat probability tiles (for 3+ classes: one "
                   "slippy map per class, OUTPUT/<class>/z/x/y.png).")
@click.option("--tta", is_flag=True, help="Average over the 8 flips/rotations (8x slower).")
@mask_threshold_option
@batch_size_option
@workers_option
@device_option
@precision_option
@click.option("--overwrite", is_flag=True, help="Redo tiles already written (default: skip them, resuming).")
@click.option("--shard", callback=_shard, help="i/n: predict only the i-th of n disjoint shares of the tiles.")
@quiet_option("No progress bar.")
@reports_errors
def cli(source, output, checkpoint, model_config, zoom, tile_size, bands, resampling, geotiff_out, window, overlap,
        max_tiles, border, masks, tta, threshold, batch_size, workers, device, precision, overwrite, shard, quiet):
    """Predict SOURCE into OUTPUT/z/x/y.png masks (default OUTPUT: SOURCE-masks or SOURCE-probs beside it; for a
    URL, in the current folder).

    SOURCE is a slippy-map folder (z/x/y.<png|jpg|webp|tif>) or a GeoTIFF scene (any CRS; a path or the http(s)
    URL of a cloud-optimised GeoTIFF; with --zoom for tiles, --geotiff for one mask on its grid, or both). The
    checkpoint says how to build the model and preprocess. Reruns skip tiles already written; under torchrun
    each rank takes its share.
    """
    from robosat_effnet.data.remote import source_name
    from robosat_effnet.errors import DatasetError, OutputError, RasterError
    from robosat_effnet.models.device import resolve_device
    from robosat_effnet.models.loaded import open_model
    from robosat_effnet.outputs import check_separate, check_writable
    from robosat_effnet.predict import PredictOptions, predict_geotiff, predict_mask_geotiff, predict_tiles
    from robosat_effnet.predict.mosaic import check_mask_output, check_windows
    from robosat_effnet.text import is_url

    try:
        check_windows(window, overlap)  # the library's own check, as a usage error before any work
    except RasterError as e:
        raise click.UsageError(str(e)) from None

    remote = is_url(source)  # a COG by URL: read over range requests, nothing local beside it
    source = source if remote else Path(source)
    is_scene = remote or source.is_file()
    if is_scene and not remote and source.suffix.lower() not in GEOTIFF_SUFFIXES:
        raise click.UsageError(f"{source} is neither a slippy-map folder nor a GeoTIFF (.tif)")
    if not is_scene and (zoom is not None or geotiff_out or tile_size):
        raise click.UsageError("--zoom, --tile-size and --geotiff apply to a GeoTIFF SOURCE, not a tile folder")
    if is_scene and zoom is None and not geotiff_out:
        raise click.UsageError("a GeoTIFF SOURCE needs --zoom Z (slippy-map tiles) and/or --geotiff mask.tif")
    checkpoint = Path(checkpoint) if checkpoint else default_checkpoint(model_config)
    name = source_name(source) if is_scene else source.resolve().name
    beside = Path.cwd() if remote else source.resolve().parent
    out = Path(output) if output else beside / f"{name}-{'masks' if masks else 'probs'}"
    # Every output against every input before anything is written (--overwrite or not).
    check_separate([out if not is_scene or zoom is not None else None, geotiff_out], [source, checkpoint])
    existing = False  # whether --geotiff names a mask of SOURCE made before
    if geotiff_out:  # written last: a read-only or full disk, or a link there, must fail before the tiles are made
        try:  # a link, a folder, a device there: a usage error; a file that is no mask of SOURCE: our error
            existing = check_mask_output(geotiff_out, source)  # only a mask of this scene is ever replaced
        except OutputError as e:
            raise click.BadParameter(str(e), param_hint="--geotiff") from None
        check_writable(Path(geotiff_out).parent, create=False)
    options = PredictOptions(border=border, probs=not masks, tta=tta, threshold=threshold, bands=bands,
                             batch_size=batch_size, workers=default_workers() if workers is None else workers,
                             device=device, precision=precision, overwrite=overwrite, shard=shard,
                             progress=not quiet, tile_size=tile_size, resampling=resampling, max_tiles=max_tiles,
                             window=window, overlap=overlap)
    # The single mask is not split: one writer (the first shard / rank 0) makes it.
    first = (shard is None or shard[0] == 0) and int(os.environ.get("RANK", 0)) == 0
    kept = existing and not overwrite  # the mask is kept as it is: nothing to predict for it
    # The checkpoint is read once, here, for every product below (none when only a kept mask is asked for).
    needed = not is_scene or zoom is not None or (geotiff_out and first and not kept)
    model = open_model(checkpoint, resolve_device(device)) if needed else checkpoint
    kind = "mask" if masks else "probability"
    if not is_scene:
        result = predict_tiles(model, source, out, options)
        _report(result, kind)
        if result.failed:
            raise DatasetError(f"{len(result.failed)} tile(s) could not be read and were not predicted, "
                               f"e.g. {result.failed[0]}")
        return
    if zoom is not None:
        _report(predict_geotiff(model, source, out, zoom, options), kind)
    if geotiff_out and not first:
        click.echo(f"{geotiff_out} is left to the first shard (--shard 0/n, rank 0)")
    elif geotiff_out:
        path = predict_mask_geotiff(model, source, geotiff_out, options)
        click.echo(f"kept the mask of {source} already in {path} (--overwrite to redo)" if kept
                   else f"wrote the mask of {source} on its own grid to {path}")


def _report(result, kind: str) -> None:
    extra = [f"{result.skipped} already there" if result.skipped else "",
             f"{result.empty} without data not written" if result.empty else ""]
    details = "; ".join(e for e in extra if e)
    speed = f" at {result.tiles_per_second:.1f} tiles/s" if result.written else ""
    click.echo(f"wrote {result.written} {kind} tiles to {result.output}{speed}" + (f" ({details})" if details else ""))
