"""The accepted values of every numeric key of dataset.toml and model.toml, as data (`Domain`), so the checks,
the messages and the tests all read one table (DATASET_DOMAINS, MODEL_DOMAINS).

A list key (mean, std, bands, [weights] values, decoder_channels) has the domain of each of its items; what ties
keys together (one std per band, pixels that stay finite once normalised) is checked where
the file is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robosat_effnet.limits import (
    MAX_BANDS,
    MAX_BATCH_SIZE,
    MAX_DECODER_CHANNELS,
    MAX_NORMALISED,
    MAX_SEED,
    MAX_TILE_SIZE,
    MAX_WORKERS,
)


@dataclass(frozen=True)
class Domain:
    """Numbers from `low` to `high` (None: no bound), either end excluded when open; `text` says it in words."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    text: str = ""

    def __contains__(self, value: Any) -> bool:
        if self.low is not None and (value < self.low or self.low_open and value == self.low):
            return False
        return self.high is None or not (value > self.high or self.high_open and value == self.high)

    def __str__(self) -> str:
        if self.text:
            return self.text
        if self.high is None:
            return "positive" if self.low == 0 and self.low_open else f"{self.low:g} or more"
        return f"from {self.low:g} to {self.high:g}"

    def problem(self, value: Any) -> bool:
        """Whether `value` (a number, or a list whose every item is checked) lies outside the domain."""
        return any(v not in self for v in value) if isinstance(value, list) else value not in self


POSITIVE = Domain(0, low_open=True)
DATASET_DOMAINS = {
    ("common", "in_channels"): Domain(1, MAX_BANDS),
    ("common", "bands"): Domain(1, MAX_BANDS, text=f"1-based channel numbers up to {MAX_BANDS}, e.g. [1, 2, 3]"),
    ("common", "mean"): Domain(-MAX_NORMALISED, MAX_NORMALISED,
                               text="per-band means of images scaled to 0..1, e.g. [0.485, 0.456, 0.406]"),
    ("common", "std"): Domain(0, low_open=True, text="positive per-band spreads of images scaled to 0..1, "
                              "e.g. [0.229, 0.224, 0.225]"),
    ("common", "max_value"): POSITIVE,
    # A class weighted 0 makes the weighted loss 0 / 0 = nan on every batch holding only that class (an empty tile
    # is all background), which would then be reported as a diverging run.
    ("weights", "values"): Domain(0, low_open=True, text="positive class weights, one per class (`rs-effnet "
                                  "weights` computes them; a class weighted 0 makes the loss nan on tiles of only "
                                  "that class)"),
}
MODEL_DOMAINS = {
    ("common", "batch_size"): Domain(1, MAX_BATCH_SIZE),
    ("common", "image_size"): Domain(32, MAX_TILE_SIZE, text=f"a multiple of 32 up to {MAX_TILE_SIZE}, e.g. 512"),
    ("common", "decoder_channels"): Domain(1, MAX_DECODER_CHANNELS, text=(
        f"a list of widths from 1 to {MAX_DECODER_CHANNELS}, e.g. [256, 128, 64, 32, 16] (unet) or [256, 128] "
        "(fpn)")),
    ("common", "seed"): Domain(0, MAX_SEED, text=f"an integer from 0 to {MAX_SEED}"),
    ("common", "workers"): Domain(0, MAX_WORKERS),
    ("common", "save_every"): Domain(1, text="at least 1"),
    ("common", "keep"): Domain(-1, text="0 (only last.pth and best.pth), a number of epoch files, or -1 (all)"),
    ("common", "validate_every"): Domain(1, text="at least 1"),
    ("opt", "epochs"): Domain(1, text="at least 1"),
    ("opt", "lr"): POSITIVE,
    ("opt", "encoder_lr"): Domain(0, low_open=True, text="positive (or left out: the same as lr)"),
    ("opt", "weight_decay"): Domain(0),
    ("opt", "decay"): Domain(0),  # robosat's name for weight_decay
    ("opt", "warmup"): Domain(0, text="0 or more epochs"),
    ("opt", "grad_clip"): Domain(0, text="0 (off) or more"),
    ("opt", "jitter"): Domain(0, 1, high_open=True, text="between 0 and 1"),
    ("opt", "hue"): Domain(0, 180, text="0 (off) to 180 degrees"),
    ("opt", "saturation"): Domain(0, 1, text="0 (off) to 1"),
    ("opt", "grayscale"): Domain(0, 1, text="a chance from 0 (never) to 1"),
    # (1 - p)^gamma with gamma < 0 is infinite for a pixel predicted with certainty: the loss becomes nan
    ("opt", "gamma"): Domain(0, text="0 (plain cross-entropy) or more"),
    ("opt", "gap_weight"): Domain(0, text="0 (off) or more"),
    ("opt", "gap_px"): Domain(1, MAX_TILE_SIZE),
}
