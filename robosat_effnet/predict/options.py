"""What a prediction run is asked to do, as one typed value: `rs-effnet predict` builds it once from its options
and it travels whole to the runner's loop, so no option can be dropped or mixed up on the way.

    options = PredictOptions(border=32, tta=True, threshold=0.4)
    predict_tiles("best.pth", "tiles/", "masks/", options)
    predict_tiles("best.pth", "tiles/", "masks/", tta=True)            # the same, keyword by keyword
    predict_tiles("best.pth", "tiles/", "masks/", options, probs=True)  # options with one field changed
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from robosat_effnet.data.warp import DEFAULT_RESAMPLING
from robosat_effnet.threshold import MASK_THRESHOLD

TILES_BATCH, WINDOWS_BATCH = 8, 4  # default batch sizes: tiles with their border, --geotiff's 512 px windows


@dataclass(frozen=True)
class PredictOptions:
    """Every setting of a prediction run. Which function reads which field:

    all:              tta, threshold (masks: a building where its probability reaches it), bands (1-based; None:
                      the checkpoint's), batch_size (None: 8 tiles, 4 windows), workers (DataLoader), device
                      (None: a GPU when there is one), precision (None, "fp32", "bf16"), overwrite, progress
    tiles (folder and GeoTIFF):  border (px of context), probs (probability tiles instead of masks), shard (i, n)
    GeoTIFF tiles:    tile_size (None: the checkpoint's), resampling (a rasterio name), max_tiles
    GeoTIFF mask:     window, overlap (px of the sliding windows)
    """

    border: int = 32
    probs: bool = False
    tta: bool = False
    threshold: float = MASK_THRESHOLD
    bands: tuple[int, ...] | None = None
    batch_size: int | None = None
    workers: int = 0
    device: str | torch.device | None = None
    precision: str | None = None
    overwrite: bool = False
    shard: tuple[int, int] | None = None
    progress: bool = True
    tile_size: int | None = None
    resampling: str = DEFAULT_RESAMPLING
    max_tiles: int = 100_000
    window: int = 512
    overlap: int = 64

    def __post_init__(self) -> None:
        # Lists from a caller become tuples: the options stay a value that nobody changes on the way.
        if self.bands is not None and not isinstance(self.bands, tuple):
            object.__setattr__(self, "bands", tuple(self.bands))
        if self.shard is not None and not isinstance(self.shard, tuple):
            object.__setattr__(self, "shard", tuple(self.shard))

    def batch(self, default: int) -> int:
        """The batch size asked for, else `default` (TILES_BATCH or WINDOWS_BATCH)."""
        return self.batch_size or default

    def bands_list(self) -> list[int] | None:
        """`bands` as the list the readers and records take."""
        return list(self.bands) if self.bands else None


def predict_options(options: PredictOptions | None = None, overrides: dict[str, Any] | None = None,
                    caller: str = "predict") -> PredictOptions:
    """`options` (None: the defaults) with the fields in `overrides` changed: the keyword front of the public
    functions. An unknown keyword is a TypeError naming the valid ones, as Python's own would be."""
    options = options if options is not None else PredictOptions()
    if not isinstance(options, PredictOptions):
        raise TypeError(f"{caller}() takes a PredictOptions as its options, not {type(options).__name__}")
    if not overrides:
        return options
    fields = {f.name for f in dataclasses.fields(PredictOptions)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}; the options are "
                        f"{', '.join(sorted(fields))}")
    return dataclasses.replace(options, **overrides)

