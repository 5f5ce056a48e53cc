"""A model ready to run, whatever it was given as: the one type everything that predicts with a model holds.

A checkpoint arrives as a path (a `.pth` from `rs-effnet train`, a `.onnx` from `rs-effnet export`), as a network
with its spec, or as a bare network (a notebook's). `open_model` turns each into a `LoadedModel` once, at the entry
point (the CLI, or the public function a notebook calls); below it nothing asks again what it was given, and the
file is read once: the sha256 that output records name the checkpoint by comes from the bytes that were loaded.

    loaded = open_model("checkpoints/best.pth", torch.device("cpu"))
    loaded.network, loaded.spec, loaded.kind, loaded.path, loaded.sha256
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

import torch
from torch import nn

from robosat_effnet.models.checkpoint import ModelSpec, model_from_checkpoint, read_checkpoint
from robosat_effnet.models.onnx import OnnxModel, load_onnx  # onnx and onnxruntime are imported only to load one

Kind = Literal["checkpoint", "onnx", "module"]
COLORS = ["denim", "orange", "green", "purple", "cyan", "yellow", "red", "pink"]  # a bare network's classes


@dataclass(frozen=True)
class LoadedModel:
    """A network (in eval mode; an `OnnxModel` for an exported file) with the spec that says how to feed it.

    `kind` is "checkpoint" (a .pth file), "onnx" (an exported file run by onnxruntime) or "module" (a network
    handed over in memory); `path` and `sha256` name the file it was read from (None for "module").
    """

    network: nn.Module
    spec: ModelSpec
    kind: Kind
    path: Path | None = None
    sha256: str | None = None


# What `open_model` accepts: a path (.pth or .onnx), a network, a (network, ModelSpec) pair, or one already opened.
ModelSource = Union[str, os.PathLike, nn.Module, tuple, LoadedModel]  # noqa: UP007  (a runtime alias)


def open_model(model: ModelSource, device: torch.device) -> LoadedModel:
    """The LoadedModel of `model`, on `device` (see the module docstring); a LoadedModel is returned as it is.

    A `.onnx` path gives an onnxruntime runner called like the network (`models.onnx`). A bare network gets a
    default ModelSpec (its first convolution's input bands, ImageNet mean/std) with as many classes as it outputs.
    Raises CheckpointError for a file that is not one of ours (MissingDependencyError without onnxruntime).
    """
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.suffix.lower() == ".onnx":
            runner, spec = load_onnx(path, device=device)
            return LoadedModel(runner, spec, "onnx", path, runner.sha256)
        data, digest = read_checkpoint(path, map_location=device)
        network, spec = model_from_checkpoint(data, path, device)
        return LoadedModel(network, spec, "checkpoint", path, digest)
    network, spec = model if isinstance(model, tuple) else (model, getattr(model, "spec", None))
    network = network.to(device).eval()
    if spec is None:
        spec = _default_spec(network, device)
    if isinstance(network, OnnxModel):  # one loaded earlier (`load_onnx`): it still knows its file
        return LoadedModel(network, spec, "onnx", network.path, network.sha256)
    return LoadedModel(network, spec, "module")


def _default_spec(network: nn.Module, device: torch.device) -> ModelSpec:
    """A ModelSpec for a bare network: its input bands and output classes found by running it once."""
    in_channels = next((m.in_channels for m in network.modules() if isinstance(m, nn.Conv2d)), 3)
    with torch.inference_mode():
        classes = network(torch.zeros(1, in_channels, 32, 32, device=device)).shape[1]
    return ModelSpec(classes=[f"class{i}" for i in range(classes)], colors=COLORS[:classes], in_channels=in_channels)
