"""Checkpoint -> self-describing ONNX file, for deployment with onnxruntime (or any ONNX runtime).

    from robosat_effnet.deploy import export_onnx, load_onnx

    export_onnx("checkpoints/best.pth", "model.onnx")         # dynamic batch, height and width
    export_onnx("checkpoints/best.pth", "model-int8.onnx", int8=True, calibration="tiles/")  # see `quantize`
    export_onnx("checkpoints/best.pth", "deepness.onnx", deepness=True)   # for QGIS's Deepness: see `deepness`
    model, spec = load_onnx("model.onnx", threads=2)          # tensor in, logits out, like the torch network

The file carries the checkpoint's ModelSpec as metadata (see `robosat_effnet.models.onnx` for the layout),
so `rs-effnet predict` and `eval` take it where they take a checkpoint and preprocess its inputs the same way.
"""

from __future__ import annotations

import copy
import inspect
import io
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from robosat_effnet._version import __version__
from robosat_effnet.deploy.deepness import (
    DeepnessGraph,
    DeepnessSettings,
    deepness_metadata,
    deepness_size,
    fix_tile_size,
)
from robosat_effnet.errors import ConfigError
from robosat_effnet.extras import require_onnx
from robosat_effnet.io import atomic_path
from robosat_effnet.models.checkpoint import FORMAT, ModelSpec, load_checkpoint, model_from_checkpoint
from robosat_effnet.models.onnx import (
    DIVISOR_KEY,
    FORMAT_KEY,
    INPUT,
    OUTPUT,
    PRECISION_KEY,
    SPEC_KEY,
    load_onnx,
    read_spec,
    to_pixels,
)
from robosat_effnet.models.onnx_kind import check_kind
from robosat_effnet.outputs import check_separate, check_writable, plain_file, sweep_temp, temp_folder, writing

__all__ = ["DEFAULT_OPSET", "MAX_OPSET", "MIN_OPSET", "export_onnx", "load_onnx", "read_spec", "summary"]

# The TorchScript-based exporter (the dynamo one needs onnxscript) writes opsets up to 20; 17 loads in
# every onnxruntime since 1.14.
DEFAULT_OPSET, MIN_OPSET, MAX_OPSET = 17, 11, 20
VERSION_KEY = "robosat_effnet.version"


def export_onnx(checkpoint: str | os.PathLike | tuple[nn.Module, ModelSpec], output: str | os.PathLike,
                opset: int = DEFAULT_OPSET, overwrite: bool = False, int8: bool = False,
                calibration: str | os.PathLike | None = None, calibration_tiles: int = 32,
                deepness: DeepnessSettings | bool = False) -> Path:
    """Write `checkpoint`'s network as an ONNX file with dynamic batch, height and width; return its path.

    Args:
        checkpoint: a .pth written by `rs-effnet train`, or a (model, ModelSpec) pair.
        output: the .onnx file, written atomically and checked with onnx.checker before it appears.
        opset: ONNX opset, MIN_OPSET..MAX_OPSET.
        overwrite: replace an existing output, but only one this package exported.
        int8: write it statically quantised to int8 (`robosat_effnet.deploy.quantize`), with activation ranges
            from `calibration_tiles` tiles of the slippy-map folder `calibration` (required then), read
            with the checkpoint's bands and normalisation as `rs-effnet predict` reads them.
        deepness: True or DeepnessSettings: write the file the QGIS plugin Deepness runs as it is
            (`robosat_effnet.deploy.deepness`): ConfigError for models it cannot feed (not RGB, 16-bit).
    Input "image" is N x C x H x W float32 (normalised as spec.mean/std say, H and W multiples of
    32), output "logits" N x K x H x W. For Deepness: input "image" N x 3 x S x S, raster bands 1-3 / 255
    (S: deepness.tile_size, else the checkpoint's tile size), output "probabilities" N x K x S x S (softmax).
    """
    onnx = require_onnx("onnx", "exporting to ONNX")
    output = Path(output)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(f"opset {opset} is not supported: use {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    if int8 and calibration is None:
        raise ConfigError("int8 export needs calibration tiles: pass --calibration TILES_DIR (a slippy-map folder "
                          "of imagery like the one the model will predict)")
    if calibration_tiles < 1:
        raise ConfigError(f"calibration tiles {calibration_tiles} must be 1 or more")
    deepness = DeepnessSettings() if deepness is True else deepness or None
    if not isinstance(checkpoint, tuple):
        if Path(checkpoint).suffix.lower() == ".onnx":
            raise ConfigError(f"{checkpoint} is already an exported model; export takes a .pth checkpoint")
        check_separate([output], [checkpoint])  # never onto the checkpoint itself (links resolved)
    _check_output(output, overwrite)
    check_writable(output.parent)  # before loading and tracing: a read-only folder fails at once
    sweep_temp(output.parent, target=output)  # the temp file a killed export of this output left behind
    data = None if isinstance(checkpoint, tuple) else load_checkpoint(checkpoint)
    model, spec = checkpoint if data is None else model_from_checkpoint(data, checkpoint)
    model = copy.deepcopy(model).cpu().eval()  # a caller's model keeps its device and mode
    divisor = int(getattr(model, "divisor", 32))
    if deepness:  # before tracing: a model Deepness cannot feed, or an unknown resolution, fails at once
        size = deepness_size(spec, deepness)
        if size % divisor:
            raise ConfigError(f"the tile size {size} px is not a multiple of {divisor}, which Deepness's fixed "
                              f"input size must be: give --tile-size {max(divisor, size // divisor * divisor)}")
        extra = deepness_metadata(spec, deepness, data)
        model = DeepnessGraph(model, spec)
    if int8:  # before tracing: a folder without tiles fails at once
        from robosat_effnet.deploy.quantize import calibration_batches

        batches = calibration_batches(calibration, spec, calibration_tiles, divisor=divisor)
        batches = [to_pixels(b, spec) for b in batches] if deepness else batches
    sample = torch.zeros(1, spec.in_channels, 2 * divisor, 2 * divisor)  # any valid size: the axes are dynamic
    axes = {0: "batch", 2: "height", 3: "width"}
    output_name = "probabilities" if deepness else OUTPUT
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    buffer = io.BytesIO()  # in memory: the metadata goes in before anything touches the disk
    with warnings.catch_warnings(), torch.no_grad():
        # The exporter's deprecation notice, and its tracer warnings about the size checks in
        # forward(): those hold for every input whose sides are multiples of 32.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (sample,), buffer, opset_version=opset, input_names=[INPUT],
                          output_names=[output_name], dynamic_axes={INPUT: axes, output_name: axes},
                          do_constant_folding=True, **legacy)
    proto = onnx.load_from_string(buffer.getvalue())
    metadata = {FORMAT_KEY: FORMAT, SPEC_KEY: json.dumps(spec.to_dict()), DIVISOR_KEY: str(divisor),
                VERSION_KEY: __version__, PRECISION_KEY: "fp32", **(extra if deepness else {})}
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"robosat_effnet {summary(spec)}{' for Deepness' if deepness else ''}"
    onnx.checker.check_model(proto, full_check=True)  # our exporter's fault if this fails: let it surface
    if int8:
        from robosat_effnet.deploy.quantize import quantize

        with temp_folder("export") as tmp:  # our name: a killed export's is swept by the next one
            fp32 = tmp / "fp32.onnx"
            onnx.save(proto, str(fp32))
            proto = quantize(fp32, batches, keep_float=("Softmax",) if deepness else ())
    if deepness:  # after quantising: the calibration tiles (with their border) are larger than a tile
        fix_tile_size(proto, size)
        onnx.checker.check_model(proto, full_check=True)
    check_kind(proto, spec, output, "deepness" if deepness else "network")  # what predict checks when it opens it
    with writing(output), atomic_path(output) as tmp:  # a full or read-only disk: one line, nothing half-written
        onnx.save(proto, str(tmp))
    return output


def summary(spec: ModelSpec) -> str:
    """One line on what a model is and takes, e.g. for `rs-effnet export`'s report."""
    bands = ",".join(map(str, spec.bands)) if spec.bands else "all"
    return (f"{spec.backbone} {spec.decoder}, {spec.num_classes} classes ({', '.join(spec.classes)}), "
            f"{spec.in_channels} bands (raster bands: {bands}), {spec.tile_size} px tiles, "
            f"output stride {spec.output_stride}, trained with robosat_effnet {spec.version}")


def check_onnx_name(output: str | os.PathLike) -> None:
    """ConfigError unless `output` ends in .onnx, the suffix predict and eval recognise exported models by."""
    if Path(output).suffix.lower() != ".onnx":
        raise ConfigError(f"output {output} must end in .onnx (predict and eval recognise exported models by it)")


def _check_output(output: Path, overwrite: bool) -> None:
    """Refuse outputs that would lose data: a folder, a file we did not export, a wrong suffix."""
    check_onnx_name(output)
    if output.is_dir():
        raise ConfigError(f"output {output} is a folder; give a file name such as {output / 'model.onnx'}")
    if plain_file(output):  # a link (even a dangling one), a device or a pipe: refused
        if not overwrite:
            raise ConfigError(f"{output} already exists; pass --overwrite to replace it")
        try:
            read_spec(output)
        except Exception:  # anything not exported by us stays untouched
            raise ConfigError(f"{output} exists and is not a model exported by robosat_effnet; refusing to "
                              "overwrite it: choose another file name") from None
