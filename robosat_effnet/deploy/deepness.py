"""Deepness's contract: what `rs-effnet export --deepness` adds so that the QGIS plugin Deepness runs the file.

Deepness (github.com/PUTvision/qgis-plugin-deepness) resamples a raster layer to the model's resolution, cuts
it into square tiles of the model's fixed input size S, and hands the model the layer's first bands as uint8
/ 255 (red, green, blue in 0..1; then standardised only if the file says how), N x C x S x S. A segmentation
model answers with probabilities N x K x S x S (softmax over K classes); Deepness zeroes those below its
threshold and takes the argmax. Its settings come from metadata entries whose values are JSON.

    graph = DeepnessGraph(network, spec)                # 0..1 RGB in, probabilities out
    entries = deepness_metadata(spec, DeepnessSettings(), checkpoint_data)   # model_type, class_names, ...
    fix_tile_size(proto, spec.tile_size)                # the input size Deepness reads its tile size from
    print(describe("model.onnx"))                        # the settings a file gives Deepness, in one line

The graph does the checkpoint's own preprocessing (band order, mean and std), so the file needs no
standardisation entries and Deepness's default channel mapping (red, green, blue) is the right one.
`robosat_effnet.models.onnx` runs such files too ("robosat_effnet.graph" = "deepness").
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mercantile
import numpy as np
import torch
from torch import nn

from robosat_effnet.errors import ConfigError, RobosatEffnetError
from robosat_effnet.extras import require_onnx
from robosat_effnet.io import read_image
from robosat_effnet.limits import MAX_AREA_M2, MAX_RESOLUTION_CM, MAX_TILE_SIZE, MIN_RESOLUTION_CM
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.models.onnx import DEEPNESS_KEY, GRAPH_KEY
from robosat_effnet.threshold import MASK_THRESHOLD
from robosat_effnet.tiles import tile_files

EQUATOR_M = 2 * math.pi * 6378137.0  # the Web Mercator equator, in metres
DEFAULT_BORDER = 32  # px, as `rs-effnet predict --border`
MODEL_TYPE = "Segmentor"


@dataclass
class DeepnessSettings:
    """Deepness's defaults for the file; None: derived (see `deepness_metadata`)."""

    resolution: float | None = None  # cm per pixel, in the units of the layer's CRS, the model wants its input at
    border: int | None = None  # px of context kept around each tile's core (tiles_overlap)
    threshold: float | None = None  # seg_thresh
    min_area: float = 0.0  # m2: seg_small_segment's median filter drops patches smaller than about this
    tile_size: int | None = None  # px: the graph's fixed input size, Deepness's tile; None: the checkpoint's


class DeepnessGraph(nn.Module):
    """The network as Deepness runs it: raster bands 1-3 scaled to 0..1 in, softmax probabilities out.

    In between, the checkpoint's own preprocessing: its bands in its order, then (x - mean) / std, which is
    what `to_tensor` does to uint8 pixels (their / 255 happens in Deepness).
    """

    def __init__(self, network: nn.Module, spec: ModelSpec):
        super().__init__()
        check_feedable(spec)
        self.network = network
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1))
        order = [b - 1 for b in spec.bands] if spec.bands else list(range(spec.in_channels))
        self.order = None if order == sorted(order) else order  # a permutation of the RGB bands, or none

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order is not None:
            x = x[:, self.order]
        x = (x - self.mean) / self.std
        return torch.softmax(self.network(x), dim=1)


def check_feedable(spec: ModelSpec) -> None:
    """ConfigError unless Deepness can feed the model: 3 bands, raster bands 1-3 in some order, uint8 scaling."""
    if spec.in_channels != 3:
        raise ConfigError(f"the model takes {spec.in_channels} band(s) but Deepness hands a model red, green and "
                          "blue (uint8 / 255): only 3-band RGB models can be exported with --deepness")
    if spec.bands and sorted(spec.bands) != [1, 2, 3]:  # as models.onnx.raster_order requires
        raise ConfigError(f"the model reads raster bands {spec.bands} but Deepness hands a model bands 1, 2 and 3 "
                          "(red, green, blue): only models of those bands can be exported with --deepness")
    if spec.max_value is not None:
        raise ConfigError(f"the model reads uint16 pixels (max_value {spec.max_value:g}) but Deepness divides every "
                          "pixel by 255: only models trained on 8-bit imagery can be exported with --deepness")


def deepness_metadata(spec: ModelSpec, settings: DeepnessSettings,
                      checkpoint: dict[str, Any] | None = None) -> dict[str, str]:
    """Metadata entries for a file Deepness reads, values in JSON, plus ours ("robosat_effnet.graph" and
    "robosat_effnet.deepness": the border and where the resolution came from).

    `checkpoint` (the loaded .pth, see `checkpoint.load_checkpoint`) is where the resolution comes from when
    `settings` gives none: its dataset_config names the training tiles, whose zoom gives their pixel's size in
    Web Mercator metres (see `training_resolution`). Every number is checked before it is computed with, so
    no setting a caller can pass overflows or divides by zero: ConfigError for settings out of range, 16-bit
    training tiles, or a resolution nobody can tell.
    """
    check_feedable(spec)
    size = deepness_size(spec, settings)
    border = settings.border if settings.border is not None else min(DEFAULT_BORDER, size // 4)
    if not 0 <= border < size / 2:
        raise ConfigError(f"border {border} px leaves no core in {size} px tiles; give --border below {size // 2}")
    # predict's own rule by default (robosat_effnet.threshold), so that QGIS draws the masks predict draws
    threshold = settings.threshold if settings.threshold is not None else MASK_THRESHOLD
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold {threshold} is not a probability; give 0..1 (0: off)")
    if not 0 <= settings.min_area <= MAX_AREA_M2:  # nan fails too
        raise ConfigError(f"min_area {settings.min_area:g} is not an area in m2 from 0 (off) to {MAX_AREA_M2:g} "
                          "(the Earth's surface); give e.g. 2")
    if settings.resolution is not None:
        resolution = written_resolution(settings.resolution)
        note = f"{resolution:g} cm/px as given"  # the number written, to its last digit
    else:
        resolution, note = training_resolution(spec, checkpoint)
    overlap = math.ceil(200 * border / size)  # %: Deepness keeps each tile's core, overlap / 2 px in from its sides
    entries = {
        "model_type": MODEL_TYPE,
        "class_names": {str(i): name for i, name in enumerate(spec.classes)},
        "resolution": resolution,  # Deepness shows two decimals but computes with all of them
        "tiles_size": size, "tile_size": size,  # its documentation says tiles_size, its code reads tile_size
        "tiles_overlap": overlap,
        "seg_thresh": threshold,
        "seg_small_segment": median_size(settings.min_area, resolution, size),
    }
    ours = {GRAPH_KEY: "deepness", DEEPNESS_KEY: json.dumps({"border": border, "resolution_source": note})}
    return {key: json.dumps(value) for key, value in entries.items()} | ours


def deepness_size(spec: ModelSpec, settings: DeepnessSettings) -> int:
    """The graph's fixed input size: `settings.tile_size`, else the checkpoint's tile size (a positive number of px;
    `export_onnx` checks it is a multiple of the network's stride)."""
    size = settings.tile_size if settings.tile_size is not None else spec.tile_size
    if not 1 <= size <= MAX_TILE_SIZE:
        raise ConfigError(f"tile size {size} px is out of range; give 32..{MAX_TILE_SIZE} px, e.g. 512")
    return size


def written_resolution(cm: float) -> float:
    """A resolution as the file holds it: 6 significant digits (what `:g` shows, so a report says exactly what
    was written), within MIN_RESOLUTION_CM..MAX_RESOLUTION_CM (never 0 for Deepness to divide by)."""
    if not MIN_RESOLUTION_CM <= cm <= MAX_RESOLUTION_CM:  # nan fails too
        raise ConfigError(f"resolution {cm:g} cm/px is out of range; give the imagery's cm per pixel, "
                          f"{MIN_RESOLUTION_CM:g} to {MAX_RESOLUTION_CM:g}")
    return float(f"{cm:.6g}")


def fix_tile_size(proto: Any, size: int) -> None:
    """Declare the input and output of `proto` (a ModelProto) size x size: Deepness takes its tile size from the
    input's shape. Batch stays dynamic; the graph still computes every shape from its input."""
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        dims[2].dim_value, dims[3].dim_value = size, size


def describe(path: str | Path) -> str:
    """The settings an exported file gives Deepness, in one line (for `rs-effnet export`'s report)."""
    onnx = require_onnx("onnx")
    meta = {entry.key: entry.value for entry in onnx.load(str(path), load_external_data=False).metadata_props}
    values = {key: json.loads(meta[key]) for key in ("tile_size", "tiles_overlap", "seg_thresh", "seg_small_segment")}
    ours = json.loads(meta[DEEPNESS_KEY])
    small = values["seg_small_segment"]
    return (f"Deepness: {values['tile_size']} px tiles overlapping {values['tiles_overlap']} % ({ours['border']} px "
            f"border), resolution {ours['resolution_source']}, threshold {values['seg_thresh']:g}, small segments "
            f"{f'{small} px median' if small else 'kept'}")


def median_size(min_area: float, resolution_cm: float, tile_size: int) -> int:
    """seg_small_segment for dropping patches under `min_area` m2: the odd side k of Deepness's median filter.

    A k x k median keeps a pixel when more than half its window is of its class, so a compact patch smaller than
    k^2 / 2 px vanishes; larger ones survive with their corners rounded. 0 (off) for no area. ConfigError when
    k exceeds `tile_size`: a filter wider than a tile erases everything (and takes Deepness hours).
    Both numbers are bounded (MAX_AREA_M2, MIN_RESOLUTION_CM), so `pixels` stays finite.
    """
    if min_area <= 0:
        return 0
    pixels = min_area / (resolution_cm / 100) ** 2
    side = 2 * math.ceil((math.sqrt(2 * pixels) - 1) / 2) + 1
    if side > tile_size:
        raise ConfigError(f"min_area {min_area:g} m2 at {resolution_cm:g} cm/px needs a median filter {side:.3g} "
                          f"px wide, wider than a {tile_size} px tile; give a smaller --min-area")
    return side


def ground_resolution(tile: mercantile.Tile, tile_px: int) -> float:
    """Ground cm per pixel of a slippy-map tile drawn at `tile_px` px, at the latitude of its centre."""
    return EQUATOR_M * math.cos(math.radians(_latitude(tile))) / (tile_px * 2**tile.z) * 100


def training_resolution(spec: ModelSpec, checkpoint: dict[str, Any] | None) -> tuple[float, str]:
    """(cm per pixel, how it was found): the size in Web Mercator cm (EPSG:3857 units) of a pixel of the
    checkpoint's training tiles at the network's tile size (training resizes every tile to it), their median.

    Deepness resamples a layer so that one pixel spans `resolution` / 100 units of the layer's CRS. On a Web
    Mercator layer (what QGIS's XYZ tiles are, and what most users add) those units are 1/cos(latitude) ground
    metres, so this value gives the model the very pixels it was trained on; the note also gives the ground
    value, for layers in metres (UTM).
    """
    config = (checkpoint or {}).get("dataset_config")
    if not isinstance(config, dict) or not config.get("dataset"):
        raise ConfigError("the checkpoint does not say which tiles it was trained on, so the imagery's resolution "
                          "is unknown: pass --resolution CM, the ground cm per pixel of that imagery")
    images = config.get("images") or ["images"]
    if not isinstance(config["dataset"], str) or not isinstance(images, list) or not isinstance(images[0], str):
        raise ConfigError("the checkpoint's record of its training tiles is damaged (dataset_config), so the "
                          "imagery's resolution is unknown: pass --resolution CM, the ground cm per pixel of that "
                          "imagery")
    folders = [Path(config["dataset"]) / split / str(images[0]) for split in ("training", "validation")]
    found: dict[mercantile.Tile, Path] = {}
    for folder in folders:
        try:
            found |= tile_files(folder)
        except RobosatEffnetError:  # moved or deleted since training
            continue
    if not found:
        raise ConfigError(f"the checkpoint's training tiles ({folders[0]}) are not on this machine, so the "
                          "imagery's resolution is unknown: pass --resolution CM, the ground cm per pixel of the "
                          "imagery it was trained on")
    first = next(iter(found.values()))
    try:
        deep = read_image(first).dtype != np.uint8
    except RobosatEffnetError:  # unreadable: its siblings say the same, and training read them
        deep = False
    if deep:
        raise ConfigError(f"the model was trained on 16-bit tiles ({first}) but Deepness divides every pixel by "
                          "255: only models trained on 8-bit imagery can be exported with --deepness")
    ground = written_resolution(statistics.median(ground_resolution(tile, spec.tile_size) for tile in found))
    mercator = written_resolution(statistics.median(EQUATOR_M / (spec.tile_size * 2**tile.z) * 100 for tile in found))
    zooms = "/".join(map(str, sorted({tile.z for tile in found})))
    latitudes = [_latitude(tile) for tile in found]
    note = (f"{mercator:g} cm/px for a Web Mercator layer (XYZ tiles, EPSG:3857: the training tiles' own pixel), "
            f"from {len(found)} training tiles (zoom {zooms}, latitude {min(latitudes):.2f} to "
            f"{max(latitudes):.2f}) at {spec.tile_size} px; for a layer in metres (UTM) pass --resolution {ground:g}")
    return mercator, note


def _latitude(tile: mercantile.Tile) -> float:
    """Degrees north of the middle of a tile (halfway between its edges)."""
    bounds = mercantile.bounds(tile)
    return (bounds.north + bounds.south) / 2
