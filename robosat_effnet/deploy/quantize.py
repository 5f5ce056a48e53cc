"""Static int8 quantisation of an exported model with onnxruntime, calibrated on image tiles.

    batches = calibration_batches("tiles/", spec, count=32)        # read as `rs-effnet predict` reads them
    quantize_int8("model.onnx", batches, "model-int8.onnx")        # QDQ, per-channel int8 weights
    proto = quantize("model.onnx", batches, keep_float=("Softmax",))  # the same, in memory, softmax in float

The int8 file keeps the fp32 file's metadata (classes, bands, normalisation: see `models.onnx`) with
"robosat_effnet.precision" = "int8", so `rs-effnet predict` and `eval` load it as they load the fp32 export.
Activation ranges come from the calibration tiles, so they should look like what the model will predict.
`rs-effnet export --int8 --calibration TILES_DIR` runs both steps; `bench.engines` times the result.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from robosat_effnet.errors import ConfigError, DatasetError
from robosat_effnet.extras import require_onnx
from robosat_effnet.io import atomic_path
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.models.onnx import INPUT, PRECISION_KEY
from robosat_effnet.outputs import temp_folder, temp_inside, writing
from robosat_effnet.tiles import tile_files

DEFAULT_CALIBRATION_TILES = 32
PERCENTILE = 99.99  # activation ranges: this percentile of |activations| over the calibration tiles


def calibration_batches(tiles_dir: str | os.PathLike, spec: ModelSpec, count: int = DEFAULT_CALIBRATION_TILES,
                        border: int = 32, divisor: int = 32) -> list[torch.Tensor]:
    """Up to `count` tiles of the slippy-map folder `tiles_dir`, each a 1 x C x H x W tensor prepared as
    `rs-effnet predict` prepares it (the spec's bands and normalisation, `border` px of neighbour context),
    mirror-padded to multiples of `divisor`. Tiles are spread evenly over the folder's (sorted) tiles.

    Raises DatasetError when the folder holds no image tiles, or none of the chosen ones can be read.
    """
    from robosat_effnet.predict.tiles import BufferedTiles

    files = tile_files(tiles_dir)
    if not files:
        raise DatasetError(f"no image tiles in {tiles_dir} to calibrate with; give a slippy-map folder "
                           "(z/x/y.<png|jpg|webp|tif>) of imagery like the one the model will predict")
    tiles = sorted(files)
    picks = sorted({int(i) for i in np.linspace(0, len(tiles) - 1, min(count, len(tiles))).round()})
    dataset = BufferedTiles(files, [tiles[i] for i in picks], border, spec)
    batches, errors = [], []
    for item in (dataset[i] for i in range(len(dataset))):
        if item["error"]:
            errors.append(item["error"])
        elif item["image"] is not None:  # tiles without any imagery say nothing about activations
            image = item["image"][None]
            pad_h, pad_w = -image.shape[-2] % divisor, -image.shape[-1] % divisor
            batches.append(F.pad(image, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else image)
    if not batches:
        reason = f": {errors[0]}" if errors else " (every one is without data)"
        raise DatasetError(f"none of the {len(picks)} calibration tiles from {tiles_dir} can be used{reason}")
    return batches


def quantize_int8(fp32: str | os.PathLike, batches: Sequence[torch.Tensor], output: str | os.PathLike) -> Path:
    """Write `fp32` (an exported .onnx file) statically quantised to int8 (`quantize`) as `output`, atomically;
    return its path."""
    onnx = require_onnx("onnx", "int8 quantisation")
    proto = quantize(fp32, batches)
    output = Path(output)
    with writing(output), atomic_path(output) as tmp_path:  # a full or read-only disk: one line, nothing half-written
        onnx.save(proto, str(tmp_path))
    return output


def quantize(fp32: str | os.PathLike, batches: Sequence[torch.Tensor], keep_float: Sequence[str] = ()) -> Any:
    """The ModelProto of `fp32` (an exported .onnx file) statically quantised to int8.

    QDQ format, per-channel symmetric int8 weights, uint8 activations whose ranges are the 0.01st to 99.99th
    percentiles over every image of `batches` (N x C x H x W tensors, as the graph takes them). Min/max ranges
    lost 3.7 points of per-building F1 on the buildings-oam study's B0 where the percentiles lost none
    (BENCHMARKS.md): a few extreme activations would otherwise stretch the range of all the others. The metadata
    is carried over with precision int8, and onnx.checker has accepted the graph. Nodes of the op types
    `keep_float` stay float (a Deepness graph's closing Softmax: probabilities in 1/255 steps would tie where
    float ones do not).
    """
    onnx = require_onnx("onnx", "int8 quantisation")
    require_onnx("onnxruntime", "int8 quantisation")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    images = [b[i:i + 1].detach().cpu().float().contiguous().numpy() for b in batches for i in range(b.shape[0])]

    class Tiles(CalibrationDataReader):
        def __init__(self):
            self.items = iter({INPUT: image} for image in images)

        def get_next(self):
            return next(self.items, None)

    source = onnx.load(str(fp32), load_external_data=False)
    excluded = [node.name for node in source.graph.node if node.op_type in keep_float]
    # Our temp name (host, pid), and the quantiser's own temp files (ort.quant.*) inside it: a killed run's
    # are swept by the next one (outputs.temp_folder).
    with temp_folder("int8") as tmp, temp_inside(tmp):
        quantized = tmp / "int8.onnx"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser logs advice about graph details on the root logger
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the percentile calibrator prints its settings
                quantize_static(str(fp32), str(quantized), Tiles(), quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=excluded,
                                extra_options={"CalibPercentile": PERCENTILE})
        except ValueError as e:  # numpy's histogram of an activation that is the same on every calibration tile
            raise ConfigError(f"cannot measure int8 ranges on the calibration tiles ({str(e)[:120]}): a layer's "
                              "output is the same on all of them (an untrained model, or blank tiles); calibrate "
                              "on varied imagery, or export without --int8") from None
        finally:
            root.setLevel(level)
        proto = onnx.load(str(quantized))
    metadata = {entry.key: entry.value for entry in source.metadata_props} | {PRECISION_KEY: "int8"}
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"{source.doc_string} (int8)".strip()
    onnx.checker.check_model(proto)  # the quantiser's fault if this fails: let it surface
    return proto
