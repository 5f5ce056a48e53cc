"""Prediction numbers for `rs-effnet bench`: throughput end to end vs model only, and large-scene memory.

    predict_throughput("best.pth", "tiles/")   # {"end_to_end_tiles_per_s": ..., "model_only_tiles_per_s": ...}
    large_scene_peak_rss()                     # a generated 20000 x 20000 px GeoTIFF, peak RSS of predicting it
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import mercantile
import numpy as np
import torch

from robosat_effnet.bench.timing import synchronize
from robosat_effnet.models.device import resolve_device
from robosat_effnet.models.loaded import ModelSource, open_model
from robosat_effnet.outputs import temp_folder
from robosat_effnet.predict.context import crop
from robosat_effnet.predict.engine import Predictor
from robosat_effnet.predict.options import PredictOptions
from robosat_effnet.predict.tiles import BufferedTiles, predict_tiles
from robosat_effnet.tiles import tile_files


def predict_throughput(model: ModelSource, tiles_dir: str | os.PathLike, *, batch_size: int = 8, workers: int = 0,
                       device: str | torch.device | None = None, border: int = 32, tta: bool = False,
                       repeats: int = 3) -> dict:
    """Tiles/s of `predict_tiles` from files to written masks, next to the model alone on the same tiles.

    Model-only times the network (with the same batches, border, TTA and softmax/argmax) on inputs
    already in memory; end-to-end adds reading, context assembly, normalisation and PNG writing.
    Both are medians over `repeats` runs, alternated so that a slow moment hits both.
    Returns {"end_to_end_tiles_per_s", "model_only_tiles_per_s", "tiles", "tile_px", "batch_size",
    "device", "overhead"} where overhead = model-only / end-to-end (1.0: I/O fully hidden).
    """
    device = resolve_device(device)
    loaded = open_model(model, device)  # once: every timed run below reuses it
    spec = loaded.spec
    files = tile_files(tiles_dir)
    tiles = list(files)
    dataset = BufferedTiles(files, tiles, border, spec)
    images = [dataset[i]["image"] for i in range(len(tiles))]
    predictor = Predictor(loaded.network, device=device, tta=tta)
    batches = [torch.stack(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    if device.type == "cuda":
        batches = [batch.pin_memory() for batch in batches]

    def model_only() -> float:
        start = time.perf_counter()
        for batch in batches:
            crop(predictor(batch), border).argmax(dim=1).to(torch.uint8).cpu()
        synchronize(device)
        return time.perf_counter() - start

    def end_to_end(out: Path) -> float:
        start = time.perf_counter()
        predict_tiles(loaded, tiles_dir, out, PredictOptions(border=border, tta=tta, batch_size=batch_size,
                                                             workers=workers, device=device, overwrite=True,
                                                             progress=False))
        return time.perf_counter() - start

    model_only()  # warm-up: allocator, cudnn autotuning
    model_times, e2e_times = [], []
    with temp_folder("bench") as tmp:
        for _ in range(repeats):
            e2e_times.append(end_to_end(tmp))
            model_times.append(model_only())
    e2e = len(tiles) / statistics.median(e2e_times)
    only = len(tiles) / statistics.median(model_times)
    return {"end_to_end_tiles_per_s": e2e, "model_only_tiles_per_s": only, "tiles": len(tiles),
            "tile_px": int(images[0].shape[-1]) - 2 * border, "batch_size": batch_size, "device": str(device),
            "overhead": only / e2e}


def write_synthetic_scene(path: str | os.PathLike, size: int, resolution: float = 0.5, crs: str = "EPSG:32636",
                          origin: tuple[float, float] = (450000.0, 50000.0), block: int = 512) -> Path:
    """A size x size px 3-band uint8 GeoTIFF (tiled, deflate), written block by block in bounded memory.

    The content is a cheap pattern (squares, gradients, a fine texture): it exists to be read, not learnt.
    """
    import rasterio
    from rasterio.transform import from_origin

    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs=crs,
                   transform=from_origin(*origin, resolution, resolution), tiled=True, blockxsize=block,
                   blockysize=block, compress="deflate", zlevel=1, BIGTIFF="IF_SAFER")
    with rasterio.open(path, "w", **profile) as dst:
        for _, window in dst.block_windows(1):
            rows = np.arange(window.row_off, window.row_off + window.height)[:, None]
            cols = np.arange(window.col_off, window.col_off + window.width)[None, :]
            squares = ((rows // 97 + cols // 131) % 2 * 90).astype(np.uint8)
            texture = ((rows * 7 + cols * 3) % 13 * 2).astype(np.uint8)  # fine detail that still compresses
            base = np.stack([squares + (rows % 256 // 4).astype(np.uint8) + texture,
                             squares + (cols % 256 // 4).astype(np.uint8) + texture,
                             np.broadcast_to(squares, (window.height, window.width))])
            dst.write(base, window=window)
    return Path(path)


# Runs its arguments as a command and prints the command's peak RSS (KiB on Linux) as the last line.
# It exists because a child forked from this (large) process starts with this process's pages in its
# high-water mark, which survives exec; a small launcher's children start small.
_LAUNCHER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def _measure(command: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB of `command` including the children it waited for, wall seconds)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return int(done.stdout.strip().splitlines()[-1]) / 1024, seconds


# `predict --geotiff` (sliding windows on the scene's own grid) with a 1x1-convolution stand-in for the network:
# the network's memory does not grow with the scene, and thousands of 512 px windows through a real one would
# take most of an hour on a CPU; what is measured is the reading, blending and writing around it.
_MOSAIC = ("import sys, torch; from robosat_effnet.models.checkpoint import ModelSpec; "
           "from robosat_effnet.predict import predict_mask_geotiff; "
           "predict_mask_geotiff((torch.nn.Conv2d(3, 2, 1), ModelSpec()), sys.argv[1], sys.argv[2], window=512, "
           "overlap=64, batch_size=4, device='cpu', progress=False)")


def large_scene_peak_rss(size: int = 20480, baseline_size: int = 8192, *, zoom: int = 14, tile_size: int = 256,
                         resolution: float = 0.5, batch_size: int = 4, checkpoint: str | os.PathLike | None = None,
                         workdir: str | os.PathLike | None = None) -> dict:
    """Peak memory of `rs-effnet predict scene.tif --zoom` on a generated size x size px scene, next to a
    smaller baseline scene with the same settings, each run in its own subprocess.

    Defaults take a few minutes on 2 CPU cores: 0.5 m pixels at zoom 14 (about 2.4 km tiles, so
    each 256 px tile is a 10x downsampled window; 25 tiles for the large scene) with an untrained
    efficientnet-b0 (BatchNorm statistics from tiles). Memory is bounded by a tile's source window, the batch
    and GDAL's capped block cache, so the two peaks should be close although the scenes differ more than 6-fold in size.
    The same scenes also go through `predict --geotiff` (512 px windows, 64 px overlap; a 1x1-conv
    stand-in network, see _MOSAIC), whose peak is reported as "mask_peak_rss_mb".
    Returns {"scene_px", "scene_raw_mb", "scene_file_mb", "tiles", "peak_rss_mb", "mask_peak_rss_mb",
    "seconds", "baseline_scene_px", "baseline_raw_mb", "baseline_tiles", "baseline_peak_rss_mb",
    "baseline_mask_peak_rss_mb", "zoom", "tile_size", "batch_size"}; raw = uncompressed pixel bytes.
    """
    from robosat_effnet.models import build_model
    from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint

    row: dict = {"zoom": zoom, "tile_size": tile_size, "batch_size": batch_size}
    with temp_folder("scene", workdir) as tmp:
        if checkpoint is None:
            from robosat_effnet.bench.calibration import calibrate_batchnorm, sample_batches

            network = calibrate_batchnorm(build_model("efficientnet-b0", num_classes=2),
                                          sample_batches(tile_size, 2, 4))  # realistic activations, as everywhere
            checkpoint = save_checkpoint(tmp / "tiny.pth", network, ModelSpec(tile_size=tile_size))
        for prefix, side in (("baseline_", baseline_size), ("", size)):
            scene = write_synthetic_scene(tmp / f"scene-{side}.tif", side, resolution)
            out = tmp / f"masks-{side}"
            command = [sys.executable, "-c", "from robosat_effnet.cli import main; main()", "predict", str(scene),
                       str(out), "--checkpoint", str(checkpoint), "--zoom", str(zoom), "--tile-size", str(tile_size),
                       "--batch-size", str(batch_size), "--workers", "0", "--device", "cpu", "--quiet"]
            peak, seconds = _measure(command)
            tiles = len(list(out.glob("*/*/*.png")))
            row[f"{prefix}mask_peak_rss_mb"], _ = _measure([sys.executable, "-c", _MOSAIC, str(scene),
                                                            str(tmp / f"mask-{side}.tif")])
            (tmp / f"mask-{side}.tif").unlink()
            if prefix:
                row.update(baseline_scene_px=side, baseline_raw_mb=side * side * 3 / 2**20, baseline_tiles=tiles,
                           baseline_peak_rss_mb=peak)
            else:
                row.update(scene_px=side, scene_raw_mb=side * side * 3 / 2**20,
                           scene_file_mb=scene.stat().st_size / 2**20, tiles=tiles, peak_rss_mb=peak, seconds=seconds)
            scene.unlink()
    return row


def throughput_rows(model: ModelSource | None = None, device: str | torch.device | None = None, tiles: int = 16,
                    size: int = 512, batch_size: int = 8, repeats: int = 3,
                    tiles_dir: str | os.PathLike | None = None, onnx: bool = True) -> list[dict]:
    """`predict_throughput` on JPEG tiles of real imagery (see calibration.sample_images), for `rs-effnet bench`:
    one row with and one without DataLoader workers.

    `model` is a checkpoint path or (network, spec); None: an efficientnet-b0 U-Net whose BatchNorm statistics
    come from the same imagery (a fresh network in eval mode would time denormal arithmetic). With `onnx` (and
    robosat_effnet.deploy.export and onnxruntime installed) the same model, exported, runs the same tiles too.
    """
    from robosat_effnet.bench.calibration import calibrate_batchnorm, sample_batches, sample_images
    from robosat_effnet.io import write_image
    from robosat_effnet.models import build_model
    from robosat_effnet.models.checkpoint import ModelSpec
    from robosat_effnet.tiles import tile_path

    if model is None:
        torch.manual_seed(0)
        network = calibrate_batchnorm(build_model("efficientnet-b0", num_classes=2),
                                      sample_batches(size, 4, 4, tiles_dir=tiles_dir))
        model = (network, ModelSpec(tile_size=size))
    rows = []
    with temp_folder("tiles") as tmp:
        columns = max(1, int(tiles ** 0.5))
        for i, image in enumerate(sample_images(size, tiles, tiles_dir)):  # a grid: context from real neighbours
            tile = mercantile.Tile(70000 + i % columns, 100000 + i // columns, 18)
            write_image(tile_path(Path(tmp) / "tiles", tile, "jpg"), image)
        runs = [("pytorch", model, 0), ("pytorch", model, min(4, max(1, (os.cpu_count() or 1) // 2)))]
        if onnx and importlib.util.find_spec("onnxruntime") and \
                importlib.util.find_spec("robosat_effnet.deploy.export"):
            from robosat_effnet.deploy.export import export_onnx
            loaded = open_model(model, torch.device("cpu"))
            onnx_file = export_onnx((loaded.network, loaded.spec), Path(tmp) / "model.onnx")
            runs.append(("onnxruntime", onnx_file, 0))
        for engine, runner, workers in runs:
            numbers = predict_throughput(runner, Path(tmp) / "tiles", batch_size=batch_size,
                                         workers=workers, device=device, repeats=repeats)
            rows.append({"engine": engine, "device": numbers["device"], "tiles": numbers["tiles"],
                         "tile_px": numbers["tile_px"], "batch": batch_size, "workers": workers,
                         "end_to_end_tiles_per_s": numbers["end_to_end_tiles_per_s"],
                         "model_only_tiles_per_s": numbers["model_only_tiles_per_s"],
                         "end_to_end_share": numbers["end_to_end_tiles_per_s"] / numbers["model_only_tiles_per_s"]})
    for row in rows:  # end to end, relative to PyTorch's without workers
        row["end_to_end_vs_pytorch"] = row["end_to_end_tiles_per_s"] / rows[0]["end_to_end_tiles_per_s"]
    return rows


def large_scene_rows(size: int = 20480, **kwargs) -> list[dict]:
    """`large_scene_peak_rss` as two rows (baseline scene, large scene) for `rs-effnet bench`."""
    r = large_scene_peak_rss(size, **kwargs)
    common = {"zoom": r["zoom"], "tile_px": r["tile_size"], "batch": r["batch_size"]}
    return [{"scene_px": f"{r['baseline_scene_px']} x {r['baseline_scene_px']}", "raw_MB": r["baseline_raw_mb"],
             "tiles": r["baseline_tiles"], "peak_RSS_MB": r["baseline_peak_rss_mb"],
             "geotiff_mask_peak_RSS_MB": r["baseline_mask_peak_rss_mb"], **common},
            {"scene_px": f"{r['scene_px']} x {r['scene_px']}", "raw_MB": r["scene_raw_mb"], "tiles": r["tiles"],
             "peak_RSS_MB": r["peak_rss_mb"], "geotiff_mask_peak_RSS_MB": r["mask_peak_rss_mb"], **common}]
