"""Predicting a slippy-map folder (`z/x/y.<ext>`, robosat's layout) into mask or probability tiles.

    result = predict_tiles("best.pth", "tiles/", "masks/")
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mercantile
import numpy as np
import torch
from torch.utils.data import Dataset

from robosat_effnet.data.transforms import fill_nodata, select_bands, to_tensor
from robosat_effnet.errors import ConfigError, DatasetError, RobosatEffnetError
from robosat_effnet.io import read_alpha, read_image
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.models.device import resolve_device
from robosat_effnet.models.loaded import ModelSource, open_model
from robosat_effnet.outputs import check_separate, claim_folder, make_record, remove_tiles
from robosat_effnet.predict.context import buffer_tile
from robosat_effnet.predict.engine import Predictor, check_precision, precision_settings
from robosat_effnet.predict.options import PredictOptions, predict_options
from robosat_effnet.predict.runner import PredictResult, run, take_share
from robosat_effnet.predict.writer import is_done
from robosat_effnet.threshold import threshold_settings
from robosat_effnet.tiles import neighbours, tile_files

ALPHA_EXTENSIONS = {".png", ".webp"}


class BufferedTiles(Dataset):
    """Tiles of a slippy-map folder, each grown by `border` px of neighbour (or mirrored) context.

    Items follow the runner's protocol (see `robosat_effnet.predict.runner`). Pixels whose alpha is 0
    (RGBA/LA PNG or WebP tiles) are marked as no data. Each process keeps a small cache of decoded
    tiles, since every tile is also read as context for up to 8 others.
    """

    def __init__(self, files: dict[mercantile.Tile, Path], tiles: Sequence[mercantile.Tile], border: int,
                 spec: ModelSpec, bands: Sequence[int] | None = None, cache_size: int = 64,
                 bands_option: str | None = None):
        self.files = files
        self.tiles = list(tiles)
        self.border = border
        self.mean, self.std = spec.mean, spec.std
        self.max_value = getattr(spec, "max_value", None)
        self.in_channels = spec.in_channels
        self.bands = list(bands) if bands else spec.bands
        self.cache_size = cache_size
        self.bands_option = bands_option  # the option that picks bands, named in advice; None: the caller has none
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.tiles)

    def read(self, path: Path) -> np.ndarray:
        """A tile's pixels with the checkpoint's bands, as H x W x C (cached)."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        image = read_image(path)
        found, option = image.shape[-1], self.bands_option
        if self.bands and max(self.bands) > found:
            fix = f"fix {option}" if option else "use tiles with the bands the model was trained on"
            raise ConfigError(f"tile {path} has {found} band(s) but bands {self.bands} asks for band "
                              f"{max(self.bands)}; {fix}")
        image = select_bands(image, self.bands)
        if image.shape[-1] != self.in_channels:
            example = ",".join(str(b) for b in range(1, self.in_channels + 1))
            fix = f"pick {self.in_channels} with {option}, e.g. {option} {example}" if option and \
                found >= self.in_channels else f"use tiles with the {self.in_channels} bands the model was trained on"
            raise ConfigError(f"tile {path} has {image.shape[-1]} bands but the checkpoint expects "
                              f"{self.in_channels}; {fix}")
        self._cache[path] = image
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return image

    def context(self, path: Path | None, shape: tuple) -> np.ndarray | None:
        """A neighbour's pixels, or None (mirror instead) if it is absent, unreadable or of another size;
        an unreadable neighbour is reported when it is predicted itself."""
        if path is None:
            return None
        try:
            image = self.read(path)
        except RobosatEffnetError:
            return None
        return image if image.shape == shape else None

    def __getitem__(self, index: int) -> dict:
        tile = self.tiles[index]
        path = self.files[tile]
        try:
            center = self.read(path)
            context = {}
            for offset, neighbour in neighbours(tile).items():
                context[offset] = self.context(self.files.get(neighbour), center.shape)
            image = to_tensor(buffer_tile(center, context, self.border), self.mean, self.std, self.max_value)
            alpha = read_alpha(path) if path.suffix.lower() in ALPHA_EXTENSIONS else None
        except RobosatEffnetError as e:
            return {"index": index, "image": None, "valid": None, "error": str(e)}
        if alpha is not None and not alpha.any():
            return {"index": index, "image": None, "valid": None, "error": None}
        valid = None if alpha is None or alpha.all() else torch.from_numpy(alpha)
        if valid is not None:  # the tile's own no-data pixels show the network the mean colour (in place)
            b = self.border
            fill_nodata(image[:, b:image.shape[1] - b, b:image.shape[2] - b], valid)
        return {"index": index, "image": image, "valid": valid, "error": None}


def predict_tiles(model: ModelSource, input_dir: str | os.PathLike, output_dir: str | os.PathLike,
                  options: PredictOptions | None = None, **overrides: Any) -> PredictResult:
    """Predict every tile of the slippy-map folder `input_dir` into `output_dir`/z/x/y.png.

    Args:
        model: checkpoint path (.pth, or .onnx run by onnxruntime), (model, ModelSpec) pair, a bare model
            (default spec), or a LoadedModel (`models.loaded.open_model`).
        options: a PredictOptions (None: the defaults); `overrides` change fields of it by keyword, e.g.
            `predict_tiles(m, "tiles", "masks", tta=True)`. The fields this function reads:
        border: px of context on each side, from the 8 neighbours or mirrored; tile + 2 x border
            should be a multiple of 32 (e.g. 512 + 2 x 32) so the network's grid matches the tiles'.
        probs: write probability tiles (robosat's format, see `predict.writer`) instead of masks.
        tta: average the 8 flips/rotations.
        threshold: masks keep a building (any class but background) only where its probability reaches this
            (`predict.threshold`; 0: the plain argmax). Probability tiles are not affected.
        precision: None (the device's default), "fp32" or "bf16" (see `engine.Predictor`); part of the
            folder's settings when not the default, so a rerun at another precision is another run.
        bands: 1-based channels to use (default: the checkpoint's, else all).
        overwrite: redo tiles whose outputs exist (default: skip them, so reruns resume).
        shard: (i, n) to predict only the i-th of n disjoint shares (also see RANK/WORLD_SIZE).
        batch_size (default 8), workers, device, progress.
    Tiles that cannot be read are listed in `result.failed` (others are still written).
    `output_dir` may not overlap `input_dir` or the checkpoint, and is only continued when the same kind
    of run wrote it (`outputs.claim_folder`): otherwise OutputError, before anything is written.
    """
    options = predict_options(options, overrides, "predict_tiles")
    if options.border < 0:
        raise DatasetError(f"border {options.border} must be 0 or more px")
    check_separate([output_dir], [input_dir])
    check_precision(options.precision)
    files = tile_files(input_dir)
    if not files:
        raise DatasetError(f"no image tiles in {input_dir}; expected a slippy-map folder z/x/y.<png|jpg|webp|tif>")
    device = resolve_device(options.device)
    loaded = open_model(model, device)
    check_separate([output_dir], [loaded.path])  # never into the checkpoint's file (links resolved)
    spec, bands = loaded.spec, options.bands_list()
    output = Path(output_dir)
    settings = {"kind": "probabilities" if options.probs else "masks", "border": options.border, "tta": options.tta,
                "bands": bands or spec.bands, "classes": spec.classes,
                **precision_settings(options.precision, device), **threshold_settings(options.threshold, options.probs)}
    claim = make_record("predict", input_dir, settings, loaded.path, loaded.sha256)
    result = PredictResult(output=output)
    share = take_share(list(files), options.shard)
    result.tiles = len(share)
    todo = [t for t in share if options.overwrite or not is_done(output, t, spec.classes, options.probs)]
    result.skipped = len(share) - len(todo)
    # Columns in blocks of 8, rows inside: a tile's neighbours are read close together (cache hits).
    todo.sort(key=lambda t: (t.z, t.x // 8, t.y, t.x))
    dataset = BufferedTiles(files, todo, options.border, spec, bands, bands_option="--bands")
    for tile in todo[:8]:  # a wrong band count fails here, before anything is written
        try:
            dataset.read(files[tile])
            break
        except ConfigError:
            raise
        except DatasetError:  # unreadable: reported with the others after the run
            continue
    # bf16 with an .onnx model fails here
    predictor = Predictor(loaded.network, device=device, tta=options.tta, precision=options.precision)
    claim_folder(output, claim, overwrite=options.overwrite, clear=remove_tiles)  # after the checks: a typo claims none
    return run(dataset, todo, predictor, spec, output, options, result)
