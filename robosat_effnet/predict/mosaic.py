"""A single georeferenced mask of a scene, in the scene's own CRS and pixel grid.

Sliding-window inference: windows of `window` px overlapping by `overlap` px are read straight
from the scene (no warping), and their probabilities blended with a tapered weight: linear ramps
across each overlap that sum to exactly 1, so every pixel's probability is a weighted mean of the
windows covering it and window edges leave no seams. The mask is written block by block as soon as
no later window can touch it, so memory holds a few windows plus an `overlap`-row strip, never the
scene. Output: a tiled, deflate-compressed uint8 GeoTIFF with the class colour map and nodata 255.

    predict_mask_geotiff("best.pth", "scene.tif", "mask.tif")
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio._err import CPLE_BaseError  # GDAL errors rasterio passes through unwrapped
from rasterio.errors import RasterioError
from rasterio.windows import Window
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from robosat_effnet.colors import NODATA_INDEX, to_rgb
from robosat_effnet.data.raster import choose_bands, gdal_env, open_scene, unreadable_error
from robosat_effnet.data.transforms import fill_nodata, to_tensor
from robosat_effnet.errors import RasterError
from robosat_effnet.io import atomic_path
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.models.device import resolve_device
from robosat_effnet.models.loaded import ModelSource, open_model
from robosat_effnet.outputs import check_separate, check_writable, plain_file, sweep_temp, writing
from robosat_effnet.predict.engine import Predictor, check_precision
from robosat_effnet.predict.options import WINDOWS_BATCH, PredictOptions, predict_options
from robosat_effnet.threshold import MASK_THRESHOLD, to_classes_numpy


def window_offsets(size: int, window: int, stride: int) -> list[int]:
    """Offsets of windows of `window` px every `stride` px that together cover `size` px."""
    count = 1 if size <= window else math.ceil((size - window) / stride) + 1
    return [i * stride for i in range(count)]


def taper(count: int, index: int, window: int, overlap: int) -> np.ndarray:
    """1-D weight of window `index` of `count`: ramps across the overlaps it shares with neighbours.

    The rising ramp (i + 0.5) / overlap of one window and the falling ramp of the window before it
    sum to 1 at every pixel, so the blended result needs no normalisation.
    """
    weight = np.ones(window, np.float32)
    ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / max(overlap, 1)
    if index > 0 and overlap:
        weight[:overlap] = ramp
    if index < count - 1 and overlap:
        weight[window - overlap:] = 1 - ramp
    return weight


class SceneWindows(Dataset):
    """Square windows of a scene in row-major order, mirror-padded past its right/bottom edge."""

    def __init__(self, path: str | os.PathLike, rows: list[int], cols: list[int], window: int,
                 bands: Sequence[int], spec: ModelSpec):
        self.path, self.rows, self.cols, self.window, self.bands = str(path), rows, cols, window, list(bands)
        self.mean, self.std = spec.mean, spec.std
        self.max_value = getattr(spec, "max_value", None)
        self._src: rasterio.DatasetReader | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def window_of(self, index: int, width: int, height: int) -> Window:
        row, col = divmod(index, len(self.cols))
        y, x = self.rows[row], self.cols[col]
        return Window(x, y, min(self.window, width - x), min(self.window, height - y))

    def __getitem__(self, index: int) -> dict:
        if self._src is None or self._pid != os.getpid():  # GDAL handles must not cross a fork
            self._src, self._pid = rasterio.open(self.path), os.getpid()
        src = self._src
        w = self.window_of(index, src.width, src.height)
        try:
            with gdal_env():
                pixels = src.read(self.bands, window=w)
                valid = src.dataset_mask(window=w) > 0
        except (RasterioError, CPLE_BaseError) as e:
            return {"index": index, "image": None, "valid": None, "error": str(e), "window": w}
        pad = ((0, self.window - int(w.height)), (0, self.window - int(w.width)))
        mode = "reflect" if min(pixels.shape[1:]) > 1 else "edge"
        pixels = np.pad(np.moveaxis(pixels, 0, -1), (*pad, (0, 0)), mode=mode)
        # Past the scene's edge the network sees the mirrored scene, not a flat fill: a flat area beside real
        # pixels is nothing it was trained on (whole tiles only), and read as roof it grew false buildings into
        # the scene's last column (demo: building IoU 0.68 against 0.90 for one window over the whole scene).
        # Those pixels are still no data in the mask; only no-data pixels inside the scene get the mean colour.
        image = fill_nodata(to_tensor(pixels, self.mean, self.std, self.max_value), np.pad(valid, pad, mode=mode))
        valid = np.pad(valid, pad, constant_values=False)
        return {"index": index, "image": image, "valid": torch.from_numpy(valid), "error": None, "window": w}


def check_windows(window: int, overlap: int) -> None:
    """RasterError unless `window` is a positive multiple of 32 (the networks' stride) and `overlap` is from 0 to
    half of it (a pixel is blended by at most two windows per axis)."""
    if window < 32 or window % 32:
        raise RasterError(f"--window {window} is not a multiple of 32 (the networks' stride), e.g. 512")
    if overlap > window // 2:
        raise RasterError(f"--overlap {overlap} is more than half of --window {window}; use at most {window // 2}")
    if overlap < 0:
        raise RasterError(f"--overlap {overlap} is negative; use 0 (no blending) or more")


def predict_mask_geotiff(model: ModelSource, scene: str | os.PathLike, output: str | os.PathLike,
                         options: PredictOptions | None = None, **overrides: Any) -> Path:
    """Write the class mask of `scene` as a GeoTIFF on the scene's grid (see the module docstring).

    `model` as in `predict_tiles`; `options` a PredictOptions (None: the defaults), `overrides` change fields of it
    by keyword. It reads window, overlap, bands, tta, threshold, precision, batch_size (default 4), workers,
    device, overwrite and progress. `window` must be a multiple of 32 and `overlap` at most half of it. An
    existing mask of this scene at `output` is kept unless `overwrite` (another file there is an error); the
    model is not even opened then. `precision` as in `predict_tiles` (an existing mask is not checked for it),
    `threshold` as in `predict_tiles`. Raises RasterError naming the unreadable area if the scene is damaged
    (nothing is written then).
    """
    options = predict_options(options, overrides, "predict_mask_geotiff")
    output = Path(output)
    check_separate([output], [scene])
    check_precision(options.precision)
    if check_mask_output(output, scene) and not options.overwrite:
        return output
    window, overlap, threshold = options.window, options.overlap, options.threshold
    check_windows(window, overlap)
    device = resolve_device(options.device)
    loaded = open_model(model, device)
    check_separate([output], [loaded.path])  # never onto the checkpoint's file (links resolved)
    spec = loaded.spec
    predictor = Predictor(loaded.network, device=device, tta=options.tta, precision=options.precision)
    # A read-only or full disk fails now, not after the last window; a killed run's temp file goes.
    sweep_temp(check_writable(output.parent), target=output)
    with open_scene(scene) as src, gdal_env():
        chosen = choose_bands(src, options.bands_list(), spec.bands, spec.in_channels)
        stride = window - overlap
        rows, cols = window_offsets(src.height, window, stride), window_offsets(src.width, window, stride)
        dataset = SceneWindows(scene, rows, cols, window, chosen, spec)
        profile = dict(driver="GTiff", width=src.width, height=src.height, count=1, dtype="uint8", crs=src.crs,
                       transform=src.transform, nodata=NODATA_INDEX, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate")
        loader = DataLoader(dataset, batch_size=options.batch(WINDOWS_BATCH), num_workers=options.workers,
                            collate_fn=list, pin_memory=device.type == "cuda")
        with writing(output, (RasterioError, CPLE_BaseError)), atomic_path(output) as tmp, \
                rasterio.open(tmp, "w", **profile) as dst, \
                tqdm(total=len(dataset), desc="mask", unit="window", disable=not options.progress) as bar:
            dst.write_colormap(1, {**{i: (*to_rgb(c), 255) for i, c in enumerate(spec.colors)},
                                   NODATA_INDEX: (0, 0, 0, 0)})
            blender = _Blender(dst, len(rows), len(cols), window, overlap, spec.num_classes, threshold)
            for items in loader:
                failed = [item for item in items if item["error"]]
                if failed:
                    raise unreadable_error(scene, src, chosen, f"{output} was not written",
                                           [item["window"] for item in failed])
                probs = predictor(torch.stack([item["image"] for item in items])).cpu().numpy()
                for item, prob in zip(items, probs, strict=True):
                    blender.add(item["index"], prob, item["valid"].numpy())
                bar.update(len(items))
    return output


def check_mask_output(output: str | os.PathLike, scene: str | os.PathLike) -> bool:
    """Whether `output` already holds a mask of `scene` (which `overwrite` may replace); nothing there: False.
    Anything else is refused, `overwrite` or not: a link (even a dangling one), a folder or a device
    (OutputError), a file that is not a mask of the scene (RasterError)."""
    if not plain_file(output):
        return False
    _check_existing(Path(output), scene)
    return True


def _check_existing(output: Path, scene: str | os.PathLike) -> None:
    """Raise RasterError unless `output` is a one-band uint8 raster on `scene`'s grid (a mask made before)."""
    with open_scene(scene) as src:
        grid = (src.width, src.height, src.transform, src.crs)
    try:
        with rasterio.open(output) as dst:
            same = (dst.width, dst.height, dst.transform, dst.crs) == grid and dst.count == 1 and \
                dst.dtypes[0] == "uint8"
    except (RasterioError, CPLE_BaseError):
        same = False
    if not same:
        raise RasterError(f"{output} exists but is not a mask of {scene}; name another file (only a mask of the "
                          "scene is ever replaced)")


class _Blender:
    """Accumulates tapered window probabilities and writes each block once it is final.

    Window (r, c) owns rows [y0, y0 + stride) and cols [x0, x0 + stride) (the whole window for the
    last row/column). That block is final once window (r, c) is added: the windows before it in this
    row left their share in `carry_cols`, those of the previous row in `carry_rows`.
    """

    def __init__(self, dst, n_rows: int, n_cols: int, window: int, overlap: int, classes: int,
                 threshold: float = MASK_THRESHOLD):
        self.dst, self.n_rows, self.n_cols, self.window, self.overlap = dst, n_rows, n_cols, window, overlap
        self.threshold = threshold
        self.stride = window - overlap
        self.span = (n_cols - 1) * self.stride + window
        self.carry_rows = np.zeros((classes, overlap, self.span), np.float32)
        self.next_rows = np.zeros_like(self.carry_rows)
        self.carry_cols: np.ndarray | None = None

    def add(self, index: int, probs: np.ndarray, valid: np.ndarray) -> None:
        r, c = divmod(index, self.n_cols)
        win, step, lap = self.window, self.stride, self.overlap
        y0, x0 = r * step, c * step
        weighted = probs * (taper(self.n_rows, r, win, lap)[:, None] * taper(self.n_cols, c, win, lap)[None, :])
        y_end = step if r < self.n_rows - 1 else win
        x_end = step if c < self.n_cols - 1 else win
        block = weighted[:, :y_end, :x_end].copy()
        if c > 0 and lap:
            block[:, :, :lap] += self.carry_cols
        if r > 0 and lap:
            block[:, :lap, :] += self.carry_rows[:, :, x0:x0 + x_end]
        if c < self.n_cols - 1:
            self.carry_cols = weighted[:, :y_end, step:win]
        if r < self.n_rows - 1 and lap:
            self.next_rows[:, :, x0:x0 + win] += weighted[:, step:win, :]
        if c == self.n_cols - 1:  # the row is done: its bottom overlap becomes the next row's top
            self.carry_rows, self.next_rows = self.next_rows, np.zeros_like(self.next_rows)
        mask = to_classes_numpy(block, self.threshold)
        mask[~valid[:y_end, :x_end]] = NODATA_INDEX
        height, width = min(y_end, self.dst.height - y0), min(x_end, self.dst.width - x0)
        self.dst.write(mask[None, :height, :width], window=Window(x0, y0, width, height))
