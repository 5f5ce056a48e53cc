"""Realistic activations for untrained networks: BatchNorm statistics taken from image tiles.

A freshly initialised network in eval mode normalises with BatchNorm's initial statistics (mean 0, var 1),
so its activations shrink block after block until they are denormal floats (~1e-13 in B0's deepest tap),
which x86 CPUs process 10-100x slower: timing such a network measures denormal arithmetic, not the network.
A few forward passes over real tiles with BatchNorm in train mode (cumulative average) give it the
statistics a trained network would have to within a scale, and its speed with them.

    batches = sample_batches(size=512, count=4, batch=4)
    calibrate_batchnorm(model, batches)       # model is now in eval mode with data statistics
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import mercantile
import numpy as np
import torch
from torch import nn

from robosat_effnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD, to_tensor
from robosat_effnet.errors import DatasetError
from robosat_effnet.io import read_image
from robosat_effnet.outputs import temp_folder
from robosat_effnet.tiles import tile_files

# The shared fixtures next to a checkout (../shared/data relative to the project root), looked up from the
# current folder first so that a run from the project root finds them whether or not the package is installed.
_SHARED = Path("..") / "shared" / "data" / "buildings-oam"


def default_tiles_dir() -> Path | None:
    """The real aerial tiles of ../shared/data/buildings-oam (first region found), or None when absent."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        shared = (root / _SHARED).resolve()
        if shared.is_dir():
            regions = sorted(p / "images" for p in shared.iterdir() if (p / "images").is_dir())
            if regions:
                return regions[0]
    return None


def _mosaics(tiles_dir: Path) -> list[np.ndarray]:
    """Images of the tiles at the folder's finest zoom; 2x2 neighbours are stitched where all four exist, so
    256 px tiles give 512 px images of contiguous ground."""
    files = tile_files(tiles_dir)
    if not files:
        raise DatasetError(f"no image tiles (z/x/y.png, .jpg, .webp, .tif) under {tiles_dir}; give a slippy-map "
                           "folder of imagery")
    zoom = max(t.z for t in files)
    finest = {t: p for t, p in files.items() if t.z == zoom}
    images, used = [], set()
    for parent in sorted({mercantile.parent(t) for t in finest}):
        children = mercantile.children(parent)  # order: top-left, top-right, bottom-right, bottom-left
        if all(c in finest for c in children):
            tl, tr, br, bl = (read_image(finest[c])[..., :3] for c in children)
            if tl.shape == tr.shape == br.shape == bl.shape:
                images.append(np.concatenate([np.concatenate([tl, tr], 1), np.concatenate([bl, br], 1)], 0))
                used.update(children)
    images += [read_image(p)[..., :3] for t, p in sorted(finest.items()) if t not in used]
    return images


def _generated_images(size: int, count: int, seed: int) -> list[np.ndarray]:
    """Crops of a synthetic town scene from robosat_effnet.data.synthetic (used when no real tiles are at hand)."""
    import rasterio

    from robosat_effnet.data.synthetic import write_sample

    side = int(np.ceil(np.sqrt(count))) * size
    with temp_folder("calib") as tmp:
        scene = write_sample(tmp, seed=seed, size=min(max(side, 256), 4096))["scene"]
        with rasterio.open(scene) as src:
            rgb = np.moveaxis(src.read(), 0, -1)
    step = max(1, rgb.shape[0] // size)
    return [rgb[r * size:(r + 1) * size, c * size:(c + 1) * size] for r in range(step) for c in range(step)
            if (r + 1) * size <= rgb.shape[0] and (c + 1) * size <= rgb.shape[1]] or [rgb]


def _fit(image: np.ndarray, size: int) -> np.ndarray:
    """A size x size px view of an H x W x C image: centre crop when larger, resized (bilinear) when smaller."""
    h, w = image.shape[:2]
    if h >= size and w >= size:
        top, left = (h - size) // 2, (w - size) // 2
        return image[top:top + size, left:left + size]
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def sample_images(size: int = 512, count: int = 16, tiles_dir: str | os.PathLike | None = None,
                  seed: int = 0) -> list[np.ndarray]:
    """`count` RGB uint8 size x size px aerial images (H x W x 3).

    From `tiles_dir` (a slippy-map folder) when given, else from the real tiles of ../shared/data/buildings-oam
    when present, else from a generated scene (robosat_effnet.data.synthetic); `tiles_source()` says which. Images are
    reused (in a shuffled order) when the source has fewer than `count`.
    """
    folder = Path(tiles_dir) if tiles_dir is not None else default_tiles_dir()
    images = _mosaics(folder) if folder is not None else _generated_images(size, count, seed)
    images = [np.ascontiguousarray(_fit(image, size)) for image in images]
    order = np.random.default_rng(seed).permutation(max(len(images), count)) % len(images)
    return [images[i] for i in order[:count]]


def sample_batches(size: int = 512, count: int = 4, batch: int = 4, tiles_dir: str | os.PathLike | None = None,
                   mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                   seed: int = 0) -> list[torch.Tensor]:
    """`count` normalised batches (N x C x size x size, C = len(mean)) of `sample_images`.

    A model with more input channels than RGB gets the RGB bands repeated: enough for timing and BatchNorm
    statistics, not for accuracy.
    """
    images = sample_images(size, count * batch, tiles_dir, seed)
    bands = [i % 3 for i in range(len(mean))]
    tensors = [to_tensor(image[..., bands], mean, std) for image in images]
    return [torch.stack(tensors[i:i + batch]).contiguous() for i in range(0, count * batch, batch)]


def tiles_source(tiles_dir: str | os.PathLike | None = None) -> str:
    """Where `sample_batches(tiles_dir=...)` takes its images from, in words (for benchmark reports)."""
    folder = Path(tiles_dir) if tiles_dir is not None else default_tiles_dir()
    return f"tiles of {folder}" if folder is not None else "a generated scene (robosat_effnet.data.synthetic)"


def calibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Replace every BatchNorm's running statistics by their cumulative average over `batches`; returns the
    model in eval mode.

    Only the BatchNorm layers run in train mode, so dropout and stochastic depth stay off and the statistics
    are those of the network as it runs at inference. Weights are untouched; gradients are not computed.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    device = next(model.parameters()).device
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None: cumulative moving average, every batch weighs the same
        m.train()
    try:
        with torch.no_grad():
            for x in batches:
                model(x.to(device))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()
    return model


def deepest_tap_magnitude(model: nn.Module, x: torch.Tensor) -> float:
    """Mean |activation| of the encoder's deepest tap on `x`: ~1e-13 for a fresh network in eval mode
    (denormal territory), order 0.1..100 for a trained or calibrated one."""
    encoder = getattr(model, "encoder", model)
    with torch.inference_mode():
        return float(encoder(x.to(next(model.parameters()).device))[-1].abs().mean())


def flush_denormal_enabled() -> bool:
    """Whether this thread flushes denormal floats to zero (torch.set_flush_denormal), tested by arithmetic:
    torch has no getter."""
    tiny = torch.tensor([1e-40], dtype=torch.float32)  # denormal in float32 (smallest normal is 1.2e-38)
    return bool((tiny * 1.0).item() == 0.0)
