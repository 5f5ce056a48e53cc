"""What an exported graph computes, read from its nodes, against what its metadata says it computes.

`rs-effnet export` writes two kinds of graph ("robosat_effnet.graph", see `robosat_effnet.models.onnx`):

    network:  normalised inputs of any size (multiples of 32) in, logits out
    deepness: raster bands 1-3 scaled to 0..1, tiles of a fixed size in; the checkpoint's (x - mean) / std as the
              graph's first step; softmax probabilities out

Predict feeds each kind differently and reads its output differently, so a file whose metadata names the wrong kind
(an entry removed or edited) would give other masks without a word, or an onnxruntime traceback. Each of the three
traits is read from the graph itself, and a mismatch is one CheckpointError line. `any_size` gives predict a
Deepness graph whose declared tile size is lifted (the graph computes every shape from its input).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robosat_effnet.errors import CheckpointError
from robosat_effnet.models.checkpoint import ModelSpec

PASS_THROUGH = ("QuantizeLinear", "DequantizeLinear")  # int8 files wrap tensors in these: the value is the same
TOLERANCE = 1e-5  # mean and std are float32 in the graph, float64 in the metadata


@dataclass
class GraphTraits:
    """What a graph's nodes say: its input's fixed height and width (None: dynamic), the (mean, std) it normalises
    its input with (None: none), and whether its output is a softmax over the class axis."""

    fixed_size: tuple[int, int] | None
    scaling: tuple[np.ndarray, np.ndarray] | None
    softmax: bool


def graph_traits(proto: Any) -> GraphTraits:
    """Read the three traits from a ModelProto (see GraphTraits)."""
    graph = proto.graph
    dims = graph.input[0].type.tensor_type.shape.dim if len(graph.input) else []
    sides = [d.dim_value if d.HasField("dim_value") else None for d in dims][2:]
    fixed = tuple(sides) if len(sides) == 2 and None not in sides else None
    softmax = len(graph.output) > 0 and _softmax_over_classes(proto, graph.output[0].name)
    return GraphTraits(fixed, _scaling(graph, graph.input[0].name if len(graph.input) else ""), softmax)


def _softmax_over_classes(proto: Any, output: str) -> bool:
    """Whether `output` is a softmax over axis 1 of N x K x H x W: one Softmax node (opset 13 and later), or, as
    the exporter writes it for older opsets (whose Softmax flattens the axes after its own), a Softmax over the
    last axis between two Transposes that move axis 1 there and back."""
    producers = {out: node for node in proto.graph.node for out in node.output}

    def producer(name: str) -> Any:  # past quantisation wrappers
        node = producers.get(name)
        while node is not None and node.op_type in PASS_THROUGH:
            node = producers.get(node.input[0])
        return node

    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    last = producer(output)
    if last is not None and last.op_type == "Softmax":
        return opset >= 13 and _attribute(last, "axis", -1) in (1, -3)
    if last is None or last.op_type != "Transpose":
        return False
    inner = producer(last.input[0])
    if inner is None or inner.op_type != "Softmax" or _attribute(inner, "axis", 1) not in (3, -1):
        return False
    first = producer(inner.input[0])
    if first is None or first.op_type != "Transpose":
        return False
    before, after = _perm(first), _perm(last)
    return len(before) == len(after) == 4 and before[3] == 1 and [before[i] for i in after] == [0, 1, 2, 3]


def check_kind(proto: Any, spec: ModelSpec, path: Path, kind: str) -> None:
    """CheckpointError (one line) unless the graph computes what `kind` ("network" or "deepness") says."""
    traits = graph_traits(proto)
    fault = _deepness_fault(traits, spec) if kind == "deepness" else _network_fault(traits)
    if fault:
        meaning = {"deepness": "0..1 RGB tiles of a fixed size in, probabilities out",
                   "network": "normalised images of any size in, logits out"}.get(kind, kind)
        raise CheckpointError(f"{path}'s metadata says it holds a {kind!r} graph ({meaning}) but the graph {fault}: "
                              "its metadata was edited or lost; re-export it with `rs-effnet export`")


def any_size(path: Path) -> bytes:
    """The model with its input's and output's height and width made dynamic again: a Deepness graph declares
    its tile size (Deepness reads it there) but computes every shape from its input, as exported."""
    import onnx

    proto = onnx.load(str(path))  # with any external data, already checked to lie beside it
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        for axis, name in ((2, "height"), (3, "width")):
            if len(dims) == 4:
                dims[axis].dim_param = name  # replaces the fixed dim_value (a oneof)
    return proto.SerializeToString()


def _deepness_fault(traits: GraphTraits, spec: ModelSpec) -> str | None:
    if not traits.softmax:
        return "does not end in a softmax over the classes"
    if traits.fixed_size is None:
        return "takes inputs of any size, not Deepness's fixed tile"
    if traits.fixed_size[0] != traits.fixed_size[1]:
        return f"takes {traits.fixed_size[0]} x {traits.fixed_size[1]} px inputs, not square tiles"
    if traits.scaling is None:
        return "does not normalise its input (x - mean) / std"
    mean, std = traits.scaling
    if mean.shape != (spec.in_channels,) or not (np.allclose(mean, spec.mean, atol=TOLERANCE)
                                                  and np.allclose(std, spec.std, atol=TOLERANCE)):
        return (f"normalises with mean {_short(mean)} and std {_short(std)} where the metadata says mean "
                f"{_short(spec.mean)} and std {_short(spec.std)}")
    return None


def _network_fault(traits: GraphTraits) -> str | None:
    if traits.softmax:
        return "ends in a softmax (probabilities, as a Deepness graph does)"
    if traits.fixed_size is not None:
        return f"takes only {traits.fixed_size[0]} x {traits.fixed_size[1]} px inputs (as a Deepness graph does)"
    if traits.scaling is not None:
        return "normalises its input itself (as a Deepness graph does)"
    return None


def _scaling(graph: Any, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) when the input, past a band reordering (Gather on axis 1) and quantisation wrappers, is first
    Sub(x, constant) then Div(., constant); None otherwise."""
    from onnx import numpy_helper

    constants = {t.name: t for t in graph.initializer}
    constants |= {node.output[0]: attr.t for node in graph.node if node.op_type == "Constant"
                  for attr in node.attribute if attr.name == "value"}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for value in node.input:
            consumers.setdefault(value, []).append(node)

    def follow(value: str) -> Any:  # the one node using `value` past the pass-through ones, or None
        for _ in range(8):
            users = consumers.get(value, [])
            if len(users) != 1:
                return None
            node = users[0]
            if node.op_type in PASS_THROUGH or (node.op_type == "Gather" and _attribute(node, "axis", 0) == 1):
                value = node.output[0]
                continue
            return node
        return None

    found = []
    node = follow(name)
    for op in ("Sub", "Div"):
        if node is None or node.op_type != op or len(node.input) != 2 or node.input[1] not in constants:
            return None
        found.append(numpy_helper.to_array(constants[node.input[1]]).astype(np.float64).ravel())
        node = follow(node.output[0])
    return found[0], found[1]


def _attribute(node: Any, name: str, default: int) -> int:
    return next((attr.i for attr in node.attribute if attr.name == name), default)


def _perm(node: Any) -> list[int]:
    return next((list(attr.ints) for attr in node.attribute if attr.name == "perm"), [])


def _short(values: Any) -> str:
    return "[" + ", ".join(f"{float(v):.4g}" for v in values) + "]"
