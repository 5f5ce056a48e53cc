"""Exported models run by onnxruntime, behind the same call as the PyTorch network: tensor in, logits out.

An exported file (written by `robosat_effnet.deploy.export.export_onnx`) describes itself:

    graph input  "image":  N x C x H x W float32, normalised as the spec says (H, W multiples of 32)
    graph output "logits": N x K x H x W float32
    metadata_props: "format" = "robosat_effnet", "robosat_effnet.spec" = the ModelSpec as JSON,
                    "robosat_effnet.divisor" = the total stride (32),
                    "robosat_effnet.precision" = "fp32", or "int8" (`rs-effnet export --int8`; absent: fp32),
                    "robosat_effnet.graph" = "deepness" for `rs-effnet export --deepness` (absent: "network"):
                    then the input is raster bands 1-3 scaled to 0..1, the output softmax probabilities, and
                    H = W = the tile size (declared for Deepness; the graph runs at any multiple of 32)

    model, spec = load_onnx("model.onnx", device="cpu", threads=2)
    logits = model(batch)                     # a torch tensor, on batch's device
    probs = Predictor(model)(batch)           # or through the predictor, as a checkpoint would be

Loading is as careful as loading a checkpoint: a file without our metadata, a corrupt one, one whose graph is not
the kind its metadata names (`models.onnx_kind`), or one whose tensors live in external files outside its own
folder is refused with one line, before onnxruntime sees it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from robosat_effnet.errors import CheckpointError, ConfigError
from robosat_effnet.extras import require_onnx
from robosat_effnet.models.checkpoint import FORMAT, ModelSpec
from robosat_effnet.models.onnx_kind import any_size, check_kind
from robosat_effnet.models.segmentation import check_size

log = logging.getLogger("robosat_effnet")

FORMAT_KEY, SPEC_KEY, DIVISOR_KEY = "format", "robosat_effnet.spec", "robosat_effnet.divisor"
PRECISION_KEY = "robosat_effnet.precision"
GRAPH_KEY, DEEPNESS_KEY = "robosat_effnet.graph", "robosat_effnet.deepness"
GRAPHS = ("network", "deepness")  # what the graph takes and gives: see the module's docstring
INPUT, OUTPUT = "image", "logits"


def read_spec(path: str | os.PathLike) -> ModelSpec:
    """The ModelSpec embedded in an exported file, after checking that the file is ours and safe to open."""
    return _read(Path(path))[1]


def load_onnx(path: str | os.PathLike, device: str | torch.device = "cpu",
              threads: int | None = None) -> tuple[OnnxModel, ModelSpec]:
    """(runner, spec) for an exported model: the runner is called like the PyTorch network.

    Args:
        path: a .onnx file written by `rs-effnet export` (its external data, if any, in its own folder).
        device: cuda uses onnxruntime's CUDAExecutionProvider where installed (onnxruntime-gpu), else
            the CPU provider runs it and outputs are moved to the device.
        threads: onnxruntime's intra-op threads; None follows torch.get_num_threads(), so
            `torch.set_num_threads(n)` governs both engines alike.
    """
    path = Path(path)
    ort = require_onnx("onnxruntime")
    proto, spec, raw = _read(path)  # metadata checked against the graph; raw: the file's bytes, read once
    metadata = _metadata(proto)
    divisor = _divisor(metadata, path)
    graph = metadata.get(GRAPH_KEY, "network")
    if graph not in GRAPHS:
        raise CheckpointError(f"{path} holds a {graph!r} graph, which this version cannot run; upgrade "
                              "robosat_effnet or re-export the model")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings about graph details are not the user's concern
    # Idle intra-op threads spin by default, taking cores from the tile readers and writers (and from any
    # PyTorch work timed beside it): on a 2-core machine that costs more than the wake-up latency it saves.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    device = torch.device(device)
    try:
        # onnxruntime gets the bytes already read, unless tensors live in files beside it (it reads those itself)
        source = any_size(path) if graph == "deepness" else str(path) if _external(proto) else raw
        session = ort.InferenceSession(source, options, providers=providers_for(device, ort))
    except Exception as e:  # onnxruntime raises its own classes for invalid graphs
        raise CheckpointError(f"onnxruntime cannot load {path}: {_first_line(e)}; re-export it with "
                              "`rs-effnet export`") from None
    runner = OnnxModel(session, spec, divisor, path, metadata.get(PRECISION_KEY, "fp32"), graph)
    runner.sha256 = hashlib.sha256(raw).hexdigest()  # of the bytes that were checked and run
    return runner, spec


def providers_for(device: torch.device, ort: ModuleType | None = None) -> list:
    """onnxruntime execution providers for a torch device: CUDA (then CPU) for cuda where present, else CPU."""
    ort = ort or require_onnx("onnxruntime")
    if device.type == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
        log.warning("onnxruntime has no CUDA provider here (pip install onnxruntime-gpu): running the .onnx "
                    "model on the CPU")
    return ["CPUExecutionProvider"]


class OnnxModel(nn.Module):
    """An onnxruntime session that behaves like our PyTorch network: N x C x H x W in, logits out.

    An nn.Module without parameters, so the predictor's `.to(device).eval()` apply unchanged.
    Inputs pass through host memory as float32 (onnxruntime copies to the GPU itself under CUDA);
    `precision` is what the file says its weights are ("fp32" or "int8"). A "deepness" graph gets the
    normalised input turned back into 0..1 raster bands (`to_pixels`) and its probabilities returned as
    log-probabilities, logits whose softmax they are.
    """

    def __init__(self, session: Any, spec: ModelSpec, divisor: int = 32, path: Path | None = None,
                 precision: str = "fp32", graph: str = "network"):
        super().__init__()
        self.session, self.spec, self.divisor, self.path, self.precision = session, spec, divisor, path, precision
        self.graph = graph
        self.sha256: str | None = None  # of the file it was loaded from (`load_onnx`)
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(x.shape[-2], x.shape[-1], self.divisor)  # as the PyTorch network does
        if x.ndim != 4 or x.shape[1] != self.spec.in_channels:
            raise ConfigError(f"{self.path} takes N x {self.spec.in_channels} x H x W images, "
                              f"got {tuple(x.shape)}")
        device, x = x.device, x.detach().to("cpu", torch.float32)
        if self.graph == "deepness":
            x = to_pixels(x, self.spec)
        (output,) = self.session.run([self.output_name], {self.input_name: x.contiguous().numpy()})
        if output.ndim != 4 or output.shape[1] != self.spec.num_classes:  # a graph whose shapes say nothing
            raise CheckpointError(f"{self.path} computes logits of shape {tuple(output.shape)} but its metadata names "
                                  f"{self.spec.num_classes} classes; re-export it with `rs-effnet export`")
        output = torch.from_numpy(output)
        if self.graph == "deepness":  # probabilities: their logarithm is a logit whose softmax they are
            output = output.clamp_min(torch.finfo(torch.float32).tiny).log()
        return output.to(device)

    def extra_repr(self) -> str:
        return f"{self.path}, {self.precision}, providers={self.providers}"


def raster_order(spec: ModelSpec) -> list[int]:
    """For each raster band 1..C, the network channel that reads it (the inverse of spec.bands, which must be
    an ordering of 1..C, or None); CheckpointError otherwise."""
    bands = spec.bands or list(range(1, spec.in_channels + 1))
    if sorted(bands) != list(range(1, spec.in_channels + 1)):
        raise CheckpointError(f"a model reading raster bands {bands} cannot take raster bands 1..{spec.in_channels} "
                              "as a Deepness graph does; re-export it without --deepness")
    return [bands.index(band) for band in range(1, spec.in_channels + 1)]


def to_pixels(x: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """N x C x H x W network inputs (spec's bands, normalised with its mean and std) as the raster bands 1..C
    scaled to 0..1 that a Deepness graph takes: x * std + mean, put back in raster order."""
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x * std + mean)[:, raster_order(spec)]


def _read(path: Path) -> tuple[Any, ModelSpec, bytes]:
    """(ModelProto without external data, spec, the file's bytes), refusing what is not ours, corrupt or unsafe."""
    if not path.is_file():
        raise CheckpointError(f"model {path} does not exist; give a .onnx file written by `rs-effnet export`")
    onnx = require_onnx("onnx")
    try:
        with open(path, "rb") as f:
            raw = f.read()
        proto = onnx.load_from_string(raw)  # external data is not loaded: its locations are checked first
    except Exception as e:  # protobuf's DecodeError and friends for damaged files
        raise CheckpointError(f"cannot read {path} as an ONNX model ({_first_line(e)}); the file is corrupt or "
                              "not ONNX: re-export it with `rs-effnet export`") from None
    metadata = _metadata(proto)
    if metadata.get(FORMAT_KEY) != FORMAT or SPEC_KEY not in metadata:
        raise CheckpointError(f"{path} is not a robosat_effnet model (no {SPEC_KEY} metadata); export one from a "
                              "checkpoint with `rs-effnet export CHECKPOINT model.onnx`")
    try:
        spec = ModelSpec.from_dict(json.loads(metadata[SPEC_KEY]))
    except (ValueError, TypeError, RecursionError) as e:
        raise CheckpointError(f"{path} has an unreadable {SPEC_KEY} metadata entry ({str(e)[:200]}); re-export it") \
            from None
    _divisor(metadata, path)
    _check_graph(proto, spec, path)
    kind = metadata.get(GRAPH_KEY, "network")
    if kind in GRAPHS:  # an unknown kind (a later version's) is refused by load_onnx
        check_kind(proto, spec, path, kind)  # the graph computes what the metadata says it does
    external = _check_external_data(proto, path)
    try:  # from the file where tensors live outside it, else the proto already read
        onnx.checker.check_model(str(path) if external else proto)
    except Exception as e:  # onnx.checker.ValidationError and file errors for missing external data
        raise CheckpointError(f"{path} is not a valid ONNX model: {_first_line(e)}; re-export it") from None
    return proto, spec, raw


def _external(proto: Any) -> bool:
    """Whether any tensor of the (already checked) model is stored in a file beside it."""
    from onnx import TensorProto

    return any(tensor.data_location == TensorProto.EXTERNAL for tensor in _tensors(proto))


def _divisor(metadata: dict[str, str], path: Path) -> int:
    """The total stride the metadata declares (32 when absent): an integer >= 1, which sizes are padded to."""
    try:
        divisor = int(metadata.get(DIVISOR_KEY, 32))
    except ValueError:
        divisor = 0
    if not 1 <= divisor <= 1024:
        raise CheckpointError(f"{path} has a damaged {DIVISOR_KEY} metadata entry ({metadata[DIVISOR_KEY][:20]!r}: "
                              "the network's total stride, e.g. 32); re-export it with `rs-effnet export`")
    return divisor


def _check_graph(proto: Any, spec: ModelSpec, path: Path) -> None:
    """Refuse metadata that the graph contradicts: input bands, output classes (where the graph fixes them)."""
    def dims(values: Any) -> list[int | None]:
        shape = values[0].type.tensor_type.shape.dim if len(values) else []
        return [d.dim_value if d.HasField("dim_value") else None for d in shape]

    image = dims([v for v in proto.graph.input if v.name == INPUT] or proto.graph.input)
    logits = dims(proto.graph.output)  # "logits", or a Deepness graph's "probabilities"
    if (image and len(image) != 4) or (len(image) == 4 and image[1] not in (None, spec.in_channels)):
        raise CheckpointError(f"{path} takes inputs of shape {image} but its metadata says {spec.in_channels} "
                              "bands (N x C x H x W); re-export it with `rs-effnet export`")
    if (logits and len(logits) != 4) or (len(logits) == 4 and logits[1] not in (None, spec.num_classes)):
        raise CheckpointError(f"{path} computes logits of shape {logits} but its metadata names {spec.num_classes} "
                              f"classes ({', '.join(spec.classes)[:100]}); re-export it with `rs-effnet export`")


def _check_external_data(proto: Any, path: Path) -> bool:
    """Refuse tensors stored outside the model's folder (absolute paths, `..`, links leading out);
    whether any tensor is stored externally."""
    from onnx import TensorProto

    folder = path.parent.resolve()
    external = False
    for tensor in _tensors(proto):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        external = True
        location = {entry.key: entry.value for entry in tensor.external_data}.get("location", "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
            raise CheckpointError(f"{path} stores tensor {tensor.name!r} in {location!r}, outside its own folder "
                                  f"{folder}; refusing to read it (keep external data beside the .onnx file)")
        if not target.is_file():
            raise CheckpointError(f"{path} stores tensor {tensor.name!r} in {target}, which does not exist; copy "
                                  "the model's data files along with it")
    return external


def _tensors(proto: Any) -> Iterator[Any]:
    """Every tensor a model holds: initializers, constants in nodes, subgraphs and local functions."""
    def graph_tensors(graph: Any) -> Iterator[Any]:
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield from (sparse.values, sparse.indices)
        yield from node_tensors(graph.node)

    def node_tensors(nodes: Any) -> Iterator[Any]:
        for node in nodes:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                if attribute.HasField("g"):
                    yield from graph_tensors(attribute.g)
                for graph in attribute.graphs:
                    yield from graph_tensors(graph)

    yield from graph_tensors(proto.graph)
    for function in proto.functions:
        yield from node_tensors(function.node)


def _metadata(proto: Any) -> dict[str, str]:
    return {entry.key: entry.value for entry in proto.metadata_props}


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
